"""`kinemo generate --lora PATH[:SCALE]` on tiny pipelines with tiny random peft LoRAs.

A clip made with a LoRA must equal the direct diffusers call with the same LoRA (load_lora_weights,
set_adapters with the scale) and seed, within 1 level of 8 bits, and differ from the clip without it; every file
records each LoRA's source, SHA-256 and scale; bad LoRAs are one line, exit status 2, and nothing is written.
"""

import json

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers.cases import CASES
from tiny_diffusers.loras import save_tiny_lora

from app.cli import main
from engine.util.files import file_sha256

PROMPT = "a fox runs through the snow"
BY_NAME = {case.name: case for case in CASES}


def generate(folder, out, case, *extra):
    argv = ["generate", PROMPT, "-o", str(out), "--model", str(folder), "--steps", "2", "--seed", "3"]
    argv += ["--frames", str(case.frames), "--width", str(case.size), "--height", str(case.size)]
    argv += ["--guidance", str(case.guidance), "--fps", str(case.fps), *extra]
    return main(argv)


def png_frames(folder) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


def direct_with_loras(case, folder, loras) -> np.ndarray:
    """The pipeline called directly, the way diffusers documents LoRAs: one adapter per file, set_adapters."""
    import diffusers
    import torch
    from tiny_diffusers.direct import CLASSES

    pipe = getattr(diffusers, CLASSES[(case.family, case.task)]).from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    for number, (path, _) in enumerate(loras):
        pipe.load_lora_weights(str(path), adapter_name=f"lora{number}")
    pipe.set_adapters([f"lora{n}" for n in range(len(loras))], adapter_weights=[scale for _, scale in loras])
    kwargs = dict(prompt=PROMPT, height=case.size, width=case.size, num_frames=case.frames, num_inference_steps=2)
    kwargs["guidance_scale"] = case.guidance
    if case.family == "ltx":
        kwargs["frame_rate"] = case.fps
    if case.family == "animatediff":
        kwargs["eta"] = 0.0
    frames = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(3), output_type="np").frames[0]
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def loras(build, tmp_path_factory):
    """(case name, kind) -> a tiny LoRA file for that case's pipeline."""
    made = {}

    def get(name, kind="full", seed=0):
        if (name, kind, seed) not in made:
            case = BY_NAME[name]
            out = tmp_path_factory.mktemp(f"lora-{name}-{kind}-{seed}")
            made[name, kind, seed] = save_tiny_lora(
                build(case), case.family, out, seed=seed, motion_only=kind == "motion"
            )
        return made[name, kind, seed]

    return get


@pytest.mark.parametrize(
    ("name", "kind"), [("wan-t2v", "full"), ("ltx-t2v", "full"), ("animatediff", "full"), ("animatediff", "motion")]
)
def test_a_lora_gives_the_direct_diffusers_frames(name, kind, build, loras, tmp_path, capsys):
    case, lora = BY_NAME[name], loras(name, kind)
    folder = build(case)
    assert generate(folder, tmp_path / "plain", case, "--format", "png") == 0
    code = generate(folder, tmp_path / "lora", case, "--format", "png", "--lora", f"{lora}:0.7")
    assert code == 0, capsys.readouterr().err

    with_lora, plain = png_frames(tmp_path / "lora"), png_frames(tmp_path / "plain")
    expected = direct_with_loras(case, folder, [(lora, 0.7)])
    assert np.abs(with_lora.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(with_lora.astype(int) - plain.astype(int)).max() > 4  # the LoRA changed the clip

    record = json.loads((tmp_path / "lora" / "kinemo.json").read_text())
    assert record["request"]["loras"] == [{"source": str(lora), "scale": 0.7, "sha256": file_sha256(lora)}]


def test_two_loras_with_their_scales_and_the_record_in_an_mp4(build, loras, tmp_path, capsys):
    case = BY_NAME["wan-t2v"]
    folder, first, second = build(case), loras("wan-t2v"), loras("wan-t2v", seed=1)
    out = tmp_path / "two"
    code = generate(folder, out, case, "--format", "png", "--lora", f"{first}:0.5", "--lora", f"{second}:-0.8")
    assert code == 0, capsys.readouterr().err
    expected = direct_with_loras(case, folder, [(first, 0.5), (second, -0.8)])
    assert np.abs(png_frames(out).astype(int) - expected.astype(int)).max() <= 1

    clip = tmp_path / "two.mp4"
    assert generate(folder, clip, case, "--lora", str(first), "--lora", f"{second}:0.25") == 0
    capsys.readouterr()
    assert main(["info", str(clip)]) == 0
    recorded = json.loads(capsys.readouterr().out)["request"]["loras"]
    assert [(x["source"], x["scale"], x["sha256"]) for x in recorded] == [
        (str(first), 1.0, file_sha256(first)),
        (str(second), 0.25, file_sha256(second)),
    ]


def test_bad_loras_are_one_line_and_write_nothing(build, loras, tmp_path, capsys):
    case = BY_NAME["wan-t2v"]
    folder = build(case)
    pickled = tmp_path / "style.bin"
    pickled.write_bytes(b"not really a pickle")
    other_family = loras("animatediff")
    misshapen = _misshapen_copy(loras("wan-t2v"), tmp_path / "misshapen.safetensors")
    cases = [
        (str(pickled), "pickled weights (bin) can run code when read"),
        (str(tmp_path / "missing.safetensors"), "no such file, and not a hub id"),
        (str(other_family), "does not fit"),
        (str(misshapen), "LoRA misshapen does not fit"),
        (f"{loras('wan-t2v')}:9", "the scale must be between -4 and 4"),
    ]
    for number, (lora, message) in enumerate(cases):
        out = tmp_path / f"bad{number}.mp4"
        code = generate(folder, out, case, "--lora", lora)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (lora, err)
        assert message in err[-1] and err[-1].startswith("kinemo: error:"), err
        assert not out.exists() and not list(tmp_path.glob(f".bad{number}*"))


def test_a_mismatched_lora_is_named_and_the_next_run_is_clean(build, loras, tmp_path):
    """The backend stays usable after a LoRA that does not fit: nothing of it is left loaded."""
    from engine.api.controls import LoraWeight
    from engine.api.errors import InvalidRequest
    from engine.api.request import GenerationRequest
    from engine.backends.base import open_backend
    from engine.backends.inputs import fingerprinted

    case = BY_NAME["wan-t2v"]
    folder = build(case)
    misshapen = _misshapen_copy(loras("wan-t2v"), tmp_path / "misshapen.safetensors")
    backend = open_backend(str(folder))
    request = GenerationRequest(
        prompt=PROMPT, model=str(folder), frames=case.frames, width=32, height=32, steps=2, guidance=2.0
    )
    bad = fingerprinted(request.with_changes(loras=(LoraWeight(str(misshapen)),)))
    with pytest.raises(InvalidRequest, match="LoRA misshapen does not fit"):
        list(backend.generate(bad))
    from engine.backends.diffusers.loras import loaded_adapters

    assert loaded_adapters(backend.pipe) == set()
    frames = [e.frames for e in backend.generate(request) if type(e).__name__ == "Frames"]
    assert frames and frames[0].std() > 1


def test_models_that_take_no_lora_say_so(build, tmp_path, capsys, loras):
    lora = loras("wan-t2v")
    out = tmp_path / "x.mp4"
    assert main(["generate", "a red circle", "-o", str(out), "--lora", str(lora), "--frames", "4"]) == 2
    assert "kinemo-starter takes no LoRA" in capsys.readouterr().err
    svd = next(c for c in CASES if c.family == "svd")
    image = tmp_path / "first.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(image)
    argv = ["generate", "x", "-o", str(out), "--model", str(build(svd)), "--image", str(image), "--lora", str(lora)]
    assert main(argv) == 2
    assert "takes no LoRA" in capsys.readouterr().err
    argv = ["generate", "x", "-o", str(out), "--model", str(build(BY_NAME["wan-t2v"])), "--lora", str(lora)]
    assert main([*argv, "--quantize", "int8"]) == 2
    assert "do not combine" in capsys.readouterr().err
    assert not out.exists()


def test_a_hub_lora_is_read_from_the_hub_cache(build, loras, hub_cache, tmp_path, capsys):
    from tiny_diffusers.hub_cache import put_in_hub_cache

    case = BY_NAME["wan-t2v"]
    lora = loras("wan-t2v")
    put_in_hub_cache(hub_cache, "someone/tiny-wan-lora", lora.parent)
    out = tmp_path / "clip"
    code = generate(build(case), out, case, "--format", "png", "--lora", "someone/tiny-wan-lora:0.7")
    assert code == 0, capsys.readouterr().err
    expected = direct_with_loras(case, build(case), [(lora, 0.7)])
    assert np.abs(png_frames(out).astype(int) - expected.astype(int)).max() <= 1
    recorded = json.loads((out / "kinemo.json").read_text())["request"]["loras"]
    assert recorded == [{"source": "someone/tiny-wan-lora", "scale": 0.7, "sha256": file_sha256(lora)}]

    from engine.registry.loras import cached_loras

    assert cached_loras() == ["someone/tiny-wan-lora/pytorch_lora_weights.safetensors"]


def _misshapen_copy(source, target):
    """The LoRA with its rank-4 A matrices widened by one input column: the names fit, the shapes do not."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(source))
    for key, value in tensors.items():
        if "lora_A" in key:
            tensors[key] = torch.cat([value, value[:, :1]], dim=1)
    save_file(tensors, str(target))
    return target


def test_a_hub_lora_that_cannot_be_fetched_is_one_line(build, hub_cache, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    build(BY_NAME["wan-t2v"])
    capsys.readouterr()  # what building the tiny pipeline printed
    code = generate(build(BY_NAME["wan-t2v"]), out, BY_NAME["wan-t2v"], "--lora", "someone/absent-lora")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "LoRA someone/absent-lora: cannot get it from the hub" in err[0]
    assert not out.exists()
