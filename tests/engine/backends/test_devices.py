import pytest
import torch

from engine.api.errors import InvalidRequest
from engine.backends.devices import pick_device, pick_dtype


def test_auto_picks_what_this_machine_has():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device("auto") == pick_device(None) == expected


def test_cpu_runs_in_fp32():
    assert pick_device("cpu") == "cpu" and pick_dtype("cpu") == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_missing_cuda_is_an_error():
    with pytest.raises(InvalidRequest, match="no CUDA GPU"):
        pick_device("cuda")


@pytest.mark.gpu
def test_cuda_runs_in_half_precision():
    assert pick_dtype("cuda") in (torch.bfloat16, torch.float16)


def test_unknown_device():
    with pytest.raises(InvalidRequest, match="unknown device 'tpu'"):
        pick_device("tpu")


def test_cli_reports_a_bad_device(tmp_path, capsys):
    from app.cli import main

    code = main(["generate", "a fox", "-o", str(tmp_path / "c.mp4"), "--model", "wan2.1-t2v-1.3b", "--device", "tpu"])
    assert code == 2 and "unknown device 'tpu'" in capsys.readouterr().err
