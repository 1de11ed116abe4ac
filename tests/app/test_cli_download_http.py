"""`kinemo models pull` and `kinemo generate --model org/name` download over real HTTP from a loopback hub."""

import json

import pytest
from hub_server import serve_hub
from tiny_diffusers.cases import CASES

from app.cli import main

WAN = next(case for case in CASES if case.name == "wan-t2v")
GATED = "tiny-org/gated-wan"
TOKEN = "hf_loopback_right"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with serve_hub(tmp_path, monkeypatch) as server:
        yield server


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pulling_a_gated_model_needs_a_token(hub, build, capsys, monkeypatch):
    repo = hub.add_repo(GATED, build(WAN), token=TOKEN)
    capsys.readouterr()  # what building the tiny pipeline printed

    for extra in ([], ["--token", "hf_wrong"]):
        code, out, err = _run(capsys, "models", "pull", GATED, *extra)
        assert (code, out) == (1, "")
        # huggingface-hub's file-count bar had started (redrawn with \r); then the one line that says why
        *bars, line = err.rstrip("\n").split("\n")
        assert all(bar.startswith("\rFetching ") for bar in bars)
        assert line.startswith(f"kinemo: error: {GATED} is gated: accept its licence")
        assert line.endswith(f"run `kinemo models pull {GATED} --token YOUR_TOKEN` (or set HF_TOKEN)")
    code, out, _ = _run(capsys, "models", "info", GATED)
    assert code == 0 and json.loads(out)["on_disk"] is False

    code, out, err = _run(capsys, "models", "pull", GATED, "--token", TOKEN)
    assert code == 0, err
    pulled = out.strip()
    assert pulled.endswith(f"models--{GATED.replace('/', '--')}/snapshots/{repo.sha}")
    code, out, _ = _run(capsys, "models", "info", GATED)
    info = json.loads(out)
    assert code == 0 and info["on_disk"] is True and info["path"] == pulled
    assert all(r.authorization is None for r in hub.seen("cdn"))

    code, out, _ = _run(capsys, "models", "remove", GATED)
    assert code == 0 and out.startswith(f"removed {GATED}")
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the token huggingface-hub users already have set
    code, out, err = _run(capsys, "models", "pull", GATED)
    assert code == 0, err


def test_pulling_a_missing_model_is_one_line(hub, capsys):
    code, out, err = _run(capsys, "models", "pull", "tiny-org/nothing-here")
    assert (code, out) == (1, "")
    assert (
        err
        == "kinemo: error: tiny-org/nothing-here was not found on the hub (a typo, or a private model that needs --token)\n"
    )


def test_generate_downloads_a_hub_model_it_does_not_have(hub, build, tmp_path, capsys):
    repo = hub.add_repo("tiny-org/wan", build(WAN))
    clip = tmp_path / "clip"
    code, _, err = _run(
        capsys,
        "generate",
        "a fox",
        "-o",
        str(clip),
        "--format",
        "png",
        "--model",
        "tiny-org/wan",
        "--frames",
        "5",
        "--width",
        "32",
        "--height",
        "32",
        "--steps",
        "2",
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert "tiny-org/wan is not on disk; downloading it from the hub" in err
    assert len(list(clip.glob("*.png"))) == 5
    assert sorted(r.filename for r in hub.seen("cdn")) == sorted(f.path for f in repo.files.values() if f.lfs)
