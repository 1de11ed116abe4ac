"""Hub models without a network: a cache laid out exactly as huggingface-hub leaves it, and offline mode."""

import json

import pytest
from tiny_diffusers.hub_cache import put_in_hub_cache
from tiny_diffusers.wan import save_tiny_wan_t2v

from app.cli import main
from engine.api.errors import ModelLoadError
from engine.registry.catalog import find_entry
from engine.registry.hub import HubModel, local_paths, pull

WAN = find_entry("wan2.1-t2v-1.3b")


@pytest.fixture(scope="module")
def tiny_wan(tmp_path_factory):
    return save_tiny_wan_t2v(tmp_path_factory.mktemp("wan"))


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_catalog_model_in_the_cache_runs_offline_and_can_be_removed(hub_cache, tiny_wan, tmp_path, capsys):
    put_in_hub_cache(hub_cache, WAN.hub_id, tiny_wan)
    assert local_paths(HubModel.from_entry(WAN)) is not None

    code, out, _ = _run(capsys, "models", "list")
    assert code == 0
    assert next(line for line in out.splitlines() if line.startswith("wan2.1-t2v-1.3b ")).split()[3] == "yes"
    code, out, _ = _run(capsys, "models", "info", "wan2.1-t2v-1.3b")
    info = json.loads(out)
    assert code == 0 and info["on_disk"] and info["path"].startswith(str(hub_cache))

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
        "wan2.1-t2v-1.3b",
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
    assert len(list(clip.glob("*.png"))) == 5
    assert json.loads((clip / "kinemo.json").read_text())["request"]["fps"] == WAN.fps  # the catalog's default

    code, out, _ = _run(capsys, "models", "remove", "wan2.1-t2v-1.3b")
    assert code == 0 and "removed Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in out
    assert local_paths(HubModel.from_entry(WAN)) is None


def test_not_on_disk_and_offline_says_what_to_run(hub_cache, tmp_path, capsys):
    code, _, err = _run(
        capsys,
        "generate",
        "a fox",
        "-o",
        str(tmp_path / "c.mp4"),
        "--model",
        "wan2.1-t2v-1.3b",
        "--frames",
        "5",
        "--width",
        "32",
        "--height",
        "32",
    )
    assert code == 1
    assert err.strip().endswith(
        "run `HF_HUB_OFFLINE=0 kinemo models pull wan2.1-t2v-1.3b` on a machine that can reach huggingface.co"
    )
    assert len(err.strip().splitlines()) == 2  # the download notice, then the error
    assert not (tmp_path / "c.mp4").exists()


def test_unknown_hub_id_offline(hub_cache, capsys):
    code, _, err = _run(capsys, "models", "pull", "someone/some-video-model")
    assert code == 1 and "someone/some-video-model is not on disk and HF_HUB_OFFLINE is set" in err


def test_an_unreachable_hub_says_what_to_run(hub_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(
        ModelLoadError,
        match=r"cannot download cogvideox-2b: the hub cannot be reached .*kinemo models pull cogvideox-2b",
    ):
        pull(HubModel.from_entry(find_entry("cogvideox-2b")))


def test_an_interrupted_download_is_not_taken_for_a_model(hub_cache, tiny_wan):
    snapshot = put_in_hub_cache(hub_cache, WAN.hub_id, tiny_wan)
    for weights in (snapshot / "transformer").glob("*.safetensors"):
        weights.unlink()
    assert local_paths(HubModel.from_entry(WAN)) is None


def test_the_starter_model_is_not_a_hub_model(capsys):
    code, _, err = _run(capsys, "models", "pull", "kinemo-starter")
    assert code == 2 and "ships with Kinemo" in err


def test_unknown_name_for_models(capsys):
    code, _, err = _run(capsys, "models", "info", "not a model")
    assert code == 2 and "unknown model" in err
