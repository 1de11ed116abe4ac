"""`kinemo generate --model FOLDER` for every diffusers family, on tiny random-weight pipelines.

Each clip must equal what the diffusers pipeline gives when called directly with the same
arguments and generator=torch.Generator("cpu").manual_seed(seed) (within 1 level of 8 bits).
"""

import json

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import direct_frames, gradient_picture

from app.cli import main

PROMPT = "ein Fuchs läuft durch den Schnee"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli_frames_equal_the_direct_diffusers_call(case, build, tmp_path, capsys):
    folder = build(case)
    out = tmp_path / "frames"
    argv = [
        "generate",
        PROMPT,
        "-o",
        str(out),
        "--format",
        "png",
        "--model",
        str(folder),
        "--steps",
        "2",
        "--frames",
        str(case.frames),
        "--width",
        str(case.size),
        "--height",
        str(case.size),
        "--guidance",
        str(case.guidance),
        "--fps",
        str(case.fps),
        "--seed",
        "5",
    ]
    image = gradient_picture(tmp_path / "first.png") if case.image_to_video else None
    if image:
        argv += ["--image", str(image)]
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 0, err

    written = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(out.glob("*.png"))])
    expected = direct_frames(case, folder, PROMPT, image, seed=5, steps=2)
    assert written.shape == expected.shape == (case.frames, case.size, case.size, 3)
    assert expected.std() > 1  # a real picture, not a flat one that any two runs would share
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    record = json.loads((out / "kinemo.json").read_text())
    assert record["request"]["model"] == str(folder) and record["request"]["seed"] == 5


@pytest.mark.parametrize("case", [c for c in CASES if c.family in ("animatediff", "svd")], ids=lambda c: c.name)
def test_no_kv_cache_draws_the_same_frames(case, build, tmp_path, capsys):
    folder = build(case)
    image = gradient_picture(tmp_path / "first.png") if case.image_to_video else None
    clips = []
    for flag in ([], ["--no-kv-cache"]):
        out = tmp_path / f"frames{len(clips)}"
        argv = [
            "generate",
            PROMPT,
            "-o",
            str(out),
            "--format",
            "png",
            "--model",
            str(folder),
            "--steps",
            "2",
            "--frames",
            str(case.frames),
            "--width",
            "32",
            "--height",
            "32",
            *flag,
        ]
        code = main(argv + (["--image", str(image)] if image else []))
        assert code == 0, capsys.readouterr().err
        clips.append(np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))]))
    assert np.abs(clips[0].astype(int) - clips[1].astype(int)).max() <= 1


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("animatediff", "wan-t2v")], ids=lambda c: c.name)
def test_quantize_int8_runs_a_diffusers_model(case, build, tmp_path, capsys, cache_dir):
    folder = build(case)
    out = tmp_path / "frames"
    argv = [
        "generate",
        PROMPT,
        "-o",
        str(out),
        "--format",
        "png",
        "--model",
        str(folder),
        "--steps",
        "2",
        "--frames",
        str(case.frames),
        "--width",
        str(case.size),
        "--height",
        str(case.size),
        "--quantize",
        "int8",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == case.frames
    assert any(cache_dir.glob("quantized-diffusers/*/manifest.json"))  # made once, for the next run
