"""bench/bench_gpu_families.py checked without a GPU: its --cpu-smoke mode runs the code a GPU run runs (configs,
the header-only folder the planner reads, the planner's estimate, apply_policy, each family's forward inputs, the
table) on the CPU with shrunk configs. What it measures on a GPU is checked there, not here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("wan2.2-ti2v-5b", "ltx-2.3", "kandinsky-5-t2v-lite")  # 16x VAE + per-token timesteps; audio; no fp8
POLICIES = ("none", "group_offload", "sequential_offload", "fp8")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu_families", ROOT / "bench" / "bench_gpu_families.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def smoke(bench, tmp_path_factory):
    """One --cpu-smoke run of three families: (exit status, printed output, rows from --json)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("gpu-families") / "rows.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = bench.main(["--cpu-smoke", "--only", ",".join(FAMILIES), "--json", str(out)])
    return status, printed.getvalue(), json.loads(out.read_text())["rows"]


def test_smoke_has_a_row_per_family_and_policy_and_no_errors(smoke):
    status, printed, rows = smoke
    assert status == 0, printed
    expected = {(f, p) for f in FAMILIES for p in POLICIES} - {("kandinsky-5-t2v-lite", "fp8")}  # no fp8 storage
    assert {(r["family"], r["policy"]) for r in rows} == expected
    assert not [r for r in rows if "error" in r]
    for row in rows:
        if row["policy"] == "sequential_offload":  # accelerate needs an accelerator as the execution device
            assert row["note"].startswith("not run on the CPU")
        else:
            assert row["estimate"] > row["est_weights"] > 0 and row["est_activations"] > 0
            assert row["seconds_per_step"] > 0 and row["resident"] is None  # nothing measured on the CPU
    table = printed.split("by family")[1]
    for family, policy in expected:
        assert any(line.split()[:2] == [family, policy] for line in table.splitlines())


def test_smoke_follows_each_pipeline(smoke):
    rows = {(r["family"], r["policy"]): r for r in smoke[2]}
    # 9 frames, 64 pixels: the TI2V-5B VAE compresses 16x (read from the VAE config the bench writes), Kandinsky's 8x
    assert rows["wan2.2-ti2v-5b", "none"]["latent"] == [3, 4, 4]
    assert rows["kandinsky-5-t2v-lite", "none"]["latent"] == [3, 8, 8]
    assert rows["ltx-2.3", "none"]["latent"] == [2, 2, 2]
    # guided steps: LTX-2.3 runs CFG in one batch of 2 plus two single passes; Wan and Kandinsky 5 one pass each
    assert rows["ltx-2.3", "none"]["passes"] == [2, 1, 1]
    assert rows["wan2.2-ti2v-5b", "none"]["passes"] == rows["kandinsky-5-t2v-lite", "none"]["passes"] == [1, 1]
    # the planner's fp8 storage: one byte a weight (fp32 on the CPU: a quarter)
    for family in ("wan2.2-ti2v-5b", "ltx-2.3"):
        assert rows[family, "fp8"]["est_weights"] == rows[family, "none"]["est_weights"] // 4


def test_the_planner_reads_the_header_only_folder(bench, tmp_path):
    import torch

    plan = bench.prepare(bench.BENCHES["wan2.2-t2v-a14b"], None, list(POLICIES), torch.float32, True, tmp_path)
    components = bench.read_pipeline(tmp_path / "wan2.2-t2v-a14b")
    floats = sum(p.numel() for p in plan["metas"][0].parameters())
    assert components["transformer"].floats == components["transformer_2"].floats == floats
    assert components["vae"].floats == 0 and components["vae"].class_name == "AutoencoderKLWan"
    files = list(tmp_path.rglob("*.safetensors"))
    assert files and all(f.stat().st_size < 2**20 for f in files)  # headers only


def test_running_out_of_memory_is_a_row_not_a_crash(bench, tmp_path, monkeypatch):
    import torch

    plan = bench.prepare(bench.BENCHES["wan2.1-t2v-1.3b"], None, ["none"], torch.float32, True, tmp_path)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(bench, "measure", out_of_memory)
    row = bench.run_row(plan, plan["policies"]["none"], "cpu", torch.float32, 1, True)
    assert row["note"] == f"does not fit (estimate {row['estimate'] / bench.GB:.1f} GB)"
    assert "error" not in row
