"""model_info: what the studio shows for each model, from the catalog, folders and the hub cache."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_layouts import fake_diffusers_folder, fake_kinemo_folder, hub_cache_with

from engine.api.errors import InvalidRequest, ModelLoadError
from engine.api.request import LIMITS, GenerationRequest
from engine.registry.catalog import catalog, family_defaults
from engine.registry.families import FAMILIES
from engine.registry.model_options import catalog_options, model_options

ROOT = Path(__file__).resolve().parents[3]


def test_the_starter_model():
    options = model_options("kinemo-starter")
    assert options == catalog_options("kinemo-starter")
    defaults = GenerationRequest(prompt="-")
    assert options.defaults == {
        k: getattr(defaults, k) for k in ("steps", "guidance", "width", "height", "frames", "fps")
    }
    assert (options.label, options.kind, options.family) == ("Kinemo · kinemo-starter", "bundled", "kinemo")
    assert options.tasks == ("t2v", "i2v")
    assert (options.max_frames, options.frame_step, options.size_multiple) == (LIMITS["frames"][1], 1, 2)
    assert options.camera_moves and options.negative_prompt and not options.needs_download
    assert not options.requires_image and not options.text_only


def test_every_catalog_model_not_on_disk(hub_cache):
    for entry in catalog().values():
        options = model_options(entry.id)
        family = FAMILIES[entry.family]
        assert options.label == f"{family.label} · {entry.id}"
        assert (options.kind, options.family, options.tasks) == ("catalog", entry.family, entry.tasks)
        assert options.hub_id == entry.hub_id and options.gated == entry.gated
        assert options.defaults == entry.defaults()
        assert options.frame_step == family.frame_step
        assert options.size_multiple == max(family.size_multiple, entry.size_multiple or 1)
        assert options.audio == family.audio and options.superseded_by == entry.superseded_by
        assert options.negative_prompt == family.negative_prompt
        assert options.max_frames == LIMITS["frames"][1] and not options.camera_moves
        assert (options.disk_gb, options.vram_gb, options.license) == (entry.disk_gb, entry.vram_gb, entry.license)
        assert options.needs_download, entry.id
        assert catalog_options(entry.id) == options.__class__(**{**options.__dict__, "needs_download": False})
    svd, wan, ltx = model_options("svd"), model_options("wan2.1-t2v-1.3b"), model_options("ltx-video")
    assert svd.requires_image and not svd.negative_prompt and not svd.text_only
    assert wan.text_only and not wan.requires_image and wan.frame_step == 4
    assert not ltx.text_only and not ltx.requires_image


def test_a_catalog_model_in_the_hub_cache_is_on_disk(hub_cache, tmp_path):
    wan = catalog()["wan2.1-t2v-1.3b"]
    hub_cache_with(hub_cache, wan.hub_id, tmp_path)
    assert not model_options(wan.id).needs_download
    by_hub_id = model_options(wan.hub_id)  # the catalog's hub id means its entry
    assert by_hub_id.model == wan.hub_id and by_hub_id.kind == "catalog" and by_hub_id.defaults == wan.defaults()
    assert not by_hub_id.needs_download


def test_a_hub_id_outside_the_catalog(hub_cache, tmp_path):
    unknown = model_options("someone/video-model")
    assert (unknown.kind, unknown.family, unknown.needs_download, unknown.hub_id) == (
        "hub",
        "",
        True,
        "someone/video-model",
    )
    assert (
        unknown.tasks == ("t2v", "i2v")
        and unknown.defaults == {}
        and unknown.label == "Hub model · someone/video-model"
    )

    hub_cache_with(hub_cache, "someone/video-model", tmp_path, "LTXPipeline")
    known = model_options("someone/video-model")
    assert (known.family, known.tasks, known.needs_download) == ("ltx", ("t2v", "i2v"), False)
    assert known.label == "LTX-Video · someone/video-model" and known.defaults == family_defaults("ltx")
    assert (known.frame_step, known.size_multiple) == (8, 32)


def test_folders(tmp_path):
    kinemo = model_options(str(fake_kinemo_folder(tmp_path / "mine", max_frames=8)))
    assert (kinemo.kind, kinemo.family, kinemo.max_frames, kinemo.label) == (
        "folder",
        "kinemo",
        LIMITS["frames"][1],
        "Kinemo · mine (folder)",
    )
    assert kinemo.camera_moves and kinemo.tasks == ("t2v", "i2v")

    svd = model_options(str(fake_diffusers_folder(tmp_path / "svd-copy", "StableVideoDiffusionPipeline")))
    assert (svd.kind, svd.family, svd.tasks) == ("folder", "svd", ("i2v",))
    assert svd.label == "Stable Video Diffusion · svd-copy (folder)" and svd.name == "svd-copy"
    assert svd.defaults == family_defaults("svd") and not svd.negative_prompt and not svd.needs_download


def test_unusable_names_and_folders(tmp_path):
    with pytest.raises(InvalidRequest, match="unknown model 'no such model'"):
        model_options("no such model")
    with pytest.raises(InvalidRequest, match="empty"):
        model_options("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRequest, match="neither a Kinemo model folder"):
        model_options(str(tmp_path / "empty"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InvalidRequest, match="model_type 'bert'"):
        model_options(str(other))
    broken = fake_diffusers_folder(tmp_path / "broken", "AnimateDiffPipeline")
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").rename(broken / "transformer" / "weights.bin")
    with pytest.raises(ModelLoadError, match="refusing pickled weights"):
        model_options(str(broken))


def test_nearest_valid_frames_and_sizes():
    wan, starter, ltx = (
        catalog_options("wan2.1-t2v-1.3b"),
        catalog_options("kinemo-starter"),
        catalog_options("ltx-video"),
    )
    assert [wan.valid_frames(n) for n in (1, 2, 4, 80, 81, 83, 5000)] == [1, 1, 5, 81, 81, 85, 1021]
    assert [starter.valid_frames(n) for n in (0, 7, 16, 40, 2000)] == [1, 7, 16, 40, 1024]
    assert [starter.valid_size(n) for n in (33, 64, 2048)] == [34, 64, 2048]
    assert [ltx.valid_size(n) for n in (40, 500, 2047)] == [32, 512, 2048]
    assert [wan.valid_size(n) for n in (8, 479)] == [32, 480]


def test_catalog_options_touch_neither_the_hub_nor_torch():
    code = (
        "import sys\nfrom engine.registry.model_options import catalog_options\n"
        "[catalog_options(m) for m in ('kinemo-starter', 'svd', 'wan2.1-t2v-1.3b')]\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'huggingface_hub', 'PySide6', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
