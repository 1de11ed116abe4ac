import json

import pytest

from engine.api.errors import ModelLoadError
from engine.registry.layout import inspect_folder

INDEX = {
    "_class_name": "WanPipeline",
    "_diffusers_version": "0.42.1",
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "UMT5EncoderModel"],
    "tokenizer": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "WanTransformer3DModel"],
    "transformer_2": [None, None],
    "vae": ["diffusers", "AutoencoderKLWan"],
}


def make_folder(root, index=INDEX, weights=".safetensors", skip=()):
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps(index))
    for name, (library, cls) in ((k, v) for k, v in index.items() if not k.startswith("_")):
        if library is None or name in skip:
            continue
        (root / name).mkdir(exist_ok=True)
        (root / name / "config.json").write_text("{}")
        if not cls.endswith(("Scheduler", "Tokenizer", "TokenizerFast")):
            (root / name / f"model{weights}").write_bytes(b"weights")
    return root


def test_a_complete_folder_is_read(tmp_path):
    folder = inspect_folder(make_folder(tmp_path / "m"))
    assert (folder.family, folder.tasks, folder.pipeline_class) == ("wan", ("t2v",), "WanPipeline")
    assert folder.components["transformer_2"] == (None, None)


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        inspect_folder(tmp_path / "nothing")


def test_no_model_index(tmp_path):
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        inspect_folder(tmp_path)


def test_unreadable_model_index(tmp_path):
    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable"):
        inspect_folder(tmp_path)


def test_unsupported_pipeline(tmp_path):
    with pytest.raises(ModelLoadError, match="StableDiffusionPipeline, which Kinemo does not run"):
        inspect_folder(make_folder(tmp_path / "m", {**INDEX, "_class_name": "StableDiffusionPipeline"}))


def test_missing_component_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="lists 'vae' but there is no vae/ folder"):
        inspect_folder(make_folder(tmp_path / "m", skip=("vae",)))


def test_component_without_weights(tmp_path):
    root = make_folder(tmp_path / "m")
    (root / "transformer" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="transformer has no weights"):
        inspect_folder(root)


@pytest.mark.parametrize("suffix", [".bin", ".ckpt", ".pt"])
def test_pickled_weights_are_refused(tmp_path, suffix):
    with pytest.raises(ModelLoadError, match="refusing pickled weights .*safetensors only"):
        inspect_folder(make_folder(tmp_path / "m", weights=suffix))
