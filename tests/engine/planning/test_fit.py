"""Whether a model fits this machine: what nvidia-smi says of the GPU, and the picker's verdict for each case."""

import os
import stat

import pytest

from engine.planning import fit
from engine.planning.fit import GB, Machine
from engine.registry.model_options import catalog_options


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that answers with the given line."""

    def install(line: str, status: int = 0):
        script = tmp_path / "nvidia-smi"
        script.write_text(f"#!/bin/sh\necho '{line}'\nexit {status}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    return install


def test_the_gpu_is_read_from_nvidia_smi(fake_smi):
    fake_smi("NVIDIA H100 80GB HBM3, 81559")
    machine = fit.this_machine()
    assert machine.gpu == "NVIDIA H100 80GB HBM3" and machine.vram == 81559 * 2**20 and machine.ram > 0
    assert "NVIDIA H100 80GB HBM3 with 80 GB" in machine.describe()


@pytest.mark.parametrize("line", ["", "garbage", "NVIDIA X, lots"])
def test_an_unreadable_answer_means_no_gpu(fake_smi, line):
    fake_smi(line)
    assert fit.this_machine().vram is None


def test_a_failing_nvidia_smi_means_no_gpu(fake_smi):
    fake_smi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", status=9)
    assert fit.this_machine().vram is None


def test_the_verdicts():
    big_gpu, small_gpu = Machine(256 * GB, 80 * GB, "A"), Machine(32 * GB, 24 * GB, "B")
    no_gpu = Machine(32 * GB, None)
    a14b, svd, starter = (catalog_options(m) for m in ("wan2.2-t2v-a14b", "svd", "kinemo-starter"))
    assert fit.fit(starter, no_gpu).runs and "any CPU" in fit.fit(starter, no_gpu).reason
    assert fit.fit(a14b, big_gpu) == fit.Fit(True, "80/80 GB VRAM", fit.fit(a14b, big_gpu).reason)
    too_large = fit.fit(a14b, small_gpu)  # 126 GB on disk: at least 63 GB in memory, against 32 GB of RAM
    assert not too_large.runs and too_large.note == "too large here" and "32 GB of RAM" in too_large.reason
    offloads = fit.fit(catalog_options("kandinsky-5-i2v-pro"), small_gpu)  # needs 48 GB of VRAM, 60 GB on disk
    assert offloads.runs and offloads.note == "48 GB VRAM: offloads" and "runs with offloading" in offloads.reason
    assert fit.fit(svd, no_gpu) == fit.Fit(True, "CPU only here", fit.fit(svd, no_gpu).reason)
    assert "estimate" in fit.fit(catalog_options("ltx-2.3"), big_gpu).reason  # not a published figure
    assert "model card" in fit.fit(catalog_options("wan2.2-ti2v-5b"), big_gpu).reason
