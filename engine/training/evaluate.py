"""Measure the bundled model on prompts it never saw in training.

    python -m engine.training.evaluate [--model kinemo-starter] [--steps 25] [--seeds 1] [--size 512] [--json FILE]

Text-to-video: every held-out combination of colour, shape, motion and background is generated
and read back by the analytic checker (engine.training.checker). Image-to-video: held-out object clips are
started from their true first frame (PSNR of frame 0 against it, and whether the motion follows the
prompt), and procedural pictures are animated with each camera move.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.kinemo.vocabulary import CAMERA_MOVES
from engine.training.checker import check_clip
from engine.training.exported_eval import exported_line, exported_text_to_video, generated, shape_recall
from engine.training.synthetic import (
    HELD_OUT_COUNT,
    SIZE,
    CameraClip,
    held_out_combos,
    render,
    sample_camera_clip,
    sample_object_clip,
)
from engine.util.frames import psnr
from engine.util.frames import to_uint8 as frames_to_uint8

ATTRIBUTES = ("colour", "shape", "motion", "background")


@dataclass
class Scores:
    counts: dict = field(default_factory=dict)
    total: int = 0

    def add(self, name: str, ok: bool) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(ok)

    def percent(self, name: str) -> float:
        return 100.0 * self.counts.get(name, 0) / max(1, self.total)


IMAGE_PROMPTS = (
    HELD_OUT_COUNT  # one per held-out combination (64): a clip is 1.6 points, fine enough for a 5-point comparison
)
CAMERA_PICTURES = 8


def to_uint8(video) -> np.ndarray:
    """(3, f, h, w) tensor in [0, 1] -> (f, h, w, 3) uint8."""
    return frames_to_uint8(video.permute(1, 2, 3, 0).numpy())


def generate(backend, request: GenerationRequest) -> np.ndarray:
    for event in backend.generate(request):
        if isinstance(event, Frames):
            return event.frames
    raise RuntimeError("no frames")


def camera_move_reading(first: np.ndarray, last: np.ndarray) -> str:
    """Which camera move best explains last frame from first frame (central region compared)."""
    import torch
    import torch.nn.functional as F

    from engine.training.synthetic import camera_coordinates

    picture = torch.from_numpy(first).permute(2, 0, 1).float()[None] / 255  # (1, 3, h, w)
    errors = {}
    for move in CAMERA_MOVES:
        amount = 18.0 if move.startswith("pans") else 1.55
        xs, ys = camera_coordinates(move, amount, torch.ones(1), SIZE)
        grid = torch.stack([xs / SIZE * 2 - 1, ys / SIZE * 2 - 1], dim=-1)  # (1, h, w, 2)
        warped = F.grid_sample(picture, grid, align_corners=False, padding_mode="border")
        target = torch.from_numpy(last).permute(2, 0, 1).float()[None] / 255
        centre = slice(20, 44)
        errors[move] = (warped - target)[..., centre, centre].pow(2).mean().item()
    return min(errors, key=errors.get)


def text_to_video(backend, combos: list, steps: int, guidance: float, seeds: int, progress: bool):
    """(scores, per-shape recall counts {shape: [right, clips]}, consistency per clip, seconds per clip)."""
    t2v, per_shape, consistency, seconds = Scores(), {}, [], []
    jobs = [(c, s) for s in range(seeds) for c in combos]
    for combo, seed in tqdm(jobs, desc="text-to-video", disable=not progress):
        prompt = sample_object_clip(random.Random(seed), combo).caption
        started = time.perf_counter()
        frames = generate(
            backend, GenerationRequest(prompt, steps=steps, guidance=guidance, seed=seed, width=SIZE, height=SIZE)
        )
        seconds.append(time.perf_counter() - started)
        reading = check_clip(frames)
        t2v.total += 1
        for name, truth in zip(ATTRIBUTES, combo):
            t2v.add(name, getattr(reading, name) == truth)
        t2v.add("all", (reading.colour, reading.shape, reading.motion, reading.background) == combo)
        counts = per_shape.setdefault(combo[1], [0, 0])
        counts[0] += int(reading.shape == combo[1])
        counts[1] += 1
        consistency.append(reading.consistency)
    return t2v, per_shape, consistency, seconds


def evaluate(
    backend, steps: int, guidance: float, seeds: int, image_prompts: int, camera_pictures: int, progress: bool = True
) -> dict:
    combos = sorted(held_out_combos())
    i2v, camera = Scores(), Scores()
    psnrs, camera_psnrs = [], []
    t2v, per_shape, consistency, seconds = text_to_video(backend, combos, steps, guidance, seeds, progress)

    rng = random.Random(99)
    with tempfile.TemporaryDirectory() as tmp:
        for index in tqdm(range(image_prompts), desc="image-to-video", disable=not progress):
            combo = combos[(index * 7) % len(combos)]
            clip = sample_object_clip(rng, combo)
            truth_first = to_uint8(render(clip, 16))[0]
            path = Path(tmp) / f"object{index}.png"
            Image.fromarray(truth_first).save(path)
            frames = generate(
                backend,
                GenerationRequest(
                    clip.caption, image=str(path), steps=steps, guidance=guidance, seed=index, width=SIZE, height=SIZE
                ),
            )
            reading = check_clip(frames)
            i2v.total += 1
            i2v.add("motion", reading.motion == combo[2])
            i2v.add("colour", reading.colour == combo[0])
            i2v.add("shape", reading.shape == combo[1])
            psnrs.append(psnr(frames[0], truth_first))
        for index in tqdm(range(camera_pictures), desc="camera moves", disable=not progress):
            clip: CameraClip = sample_camera_clip(rng, CAMERA_MOVES[index % len(CAMERA_MOVES)])
            truth_first = to_uint8(render(clip, 16))[0]
            path = Path(tmp) / f"picture{index}.png"
            Image.fromarray(truth_first).save(path)
            frames = generate(
                backend,
                GenerationRequest(
                    clip.caption, image=str(path), steps=steps, guidance=guidance, seed=index, width=SIZE, height=SIZE
                ),
            )
            camera.total += 1
            camera.add("move", camera_move_reading(frames[0], frames[-1]) == clip.move)
            camera_psnrs.append(psnr(frames[0], truth_first))

    return {
        "steps": steps,
        "guidance": guidance,
        "text_to_video": {
            "clips": t2v.total,
            **{f"{a}_accuracy": t2v.percent(a) for a in (*ATTRIBUTES, "all")},
            "shape_recall": shape_recall(per_shape),
            "temporal_consistency": 100.0 * float(np.mean(consistency)),
            "seconds_per_clip": float(np.mean(seconds)),
        },
        "image_to_video": {
            "clips": i2v.total,
            "motion_accuracy": i2v.percent("motion"),
            "colour_accuracy": i2v.percent("colour"),
            "shape_accuracy": i2v.percent("shape"),
            "first_frame_psnr_mean": float(np.mean(psnrs)) if psnrs else None,
            "first_frame_psnr_min": float(np.min(psnrs)) if psnrs else None,
        },
        "camera": {
            "clips": camera.total,
            "move_accuracy": camera.percent("move"),
            "first_frame_psnr_mean": float(np.mean(camera_psnrs)) if camera_psnrs else None,
        },
    }


def format_report(r: dict) -> str:
    t, i, c = r["text_to_video"], r["image_to_video"], r["camera"]
    lines = [
        f"held-out evaluation, {r['steps']} DDIM steps, guidance {r['guidance']}",
        f"text-to-video ({t['clips']} clips): colour {t['colour_accuracy']:.1f} %  shape {t['shape_accuracy']:.1f} %  "
        f"motion {t['motion_accuracy']:.1f} %  background {t['background_accuracy']:.1f} %  all four {t['all_accuracy']:.1f} %",
        f"  temporal consistency {t['temporal_consistency']:.1f} %  ({t['seconds_per_clip']:.2f} s per clip)",
    ]
    recall = t.get("shape_recall")
    if recall and recall["per_class"]:
        classes = "  ".join(f"{shape} {value:.1f} %" for shape, value in recall["per_class"].items())
        lines.append(f"  shape recall per class: {classes}  (mean over the classes {recall['mean']:.1f} %)")
    if i["clips"]:
        lines.append(
            f"image-to-video ({i['clips']} clips): first-frame PSNR mean {i['first_frame_psnr_mean']:.1f} dB, "
            f"min {i['first_frame_psnr_min']:.1f} dB; motion {i['motion_accuracy']:.1f} %  colour {i['colour_accuracy']:.1f} %  "
            f"shape {i['shape_accuracy']:.1f} %"
        )
    if c["clips"]:
        lines.append(
            f"camera moves ({c['clips']} pictures): move {c['move_accuracy']:.1f} %, first-frame PSNR {c['first_frame_psnr_mean']:.1f} dB"
        )
    if r.get("exported"):
        lines.append(exported_line(r["exported"]))
    return "\n".join(lines)


def photograph_scores(model: str, width: int = 512, height: int = 288) -> dict:
    """The camera model over scikit-image's photographs (never seen in training): "the camera <move>" for every
    move, read off the frames by engine.training.camera_eval. Needs `pip install "kinemo[eval]"`."""
    from engine.backends.base import open_backend
    from engine.kinemo.vocabulary import PICTURE_MOVES
    from engine.training.camera_eval import evaluate_camera, photographs, resize_frames

    backend = open_backend(model)

    def generate(picture: Path, prompt: str, w: int, h: int, seed: int) -> np.ndarray:
        request = GenerationRequest(
            prompt, model=model, image=str(picture), width=w, height=h, seed=seed, steps=backend.defaults()["steps"]
        )
        return resize_frames(generated(backend, request), w, h)

    return evaluate_camera(generate, photographs(), PICTURE_MOVES, width, height)


def photograph_line(scores: dict) -> str:
    return (
        f"photographs ({scores['clips']} clips, camera model): move {100 * scores['accuracy']:.1f} %  "
        f"frame-0 PSNR min {scores['psnr_frame0']['min']:.1f} dB  sharpness min {scores['sharpness_ratio']['min']:.2f}  "
        f"flicker max {scores['flicker']['max']:.2f}"
    )


def main(argv=None) -> int:
    from engine.backends.base import open_backend

    p = argparse.ArgumentParser(prog="python -m engine.training.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="kinemo-starter", help="model id or folder")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=GenerationRequest("-").guidance)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--image-prompts", type=int, default=IMAGE_PROMPTS)
    p.add_argument("--camera-pictures", type=int, default=CAMERA_PICTURES)
    p.add_argument("--json", type=Path, help="also write the scores as JSON")
    p.add_argument("--photographs", action="store_true", help="also animate photographs with the camera model")
    p.add_argument(
        "--size",
        type=int,
        default=0,
        help="also make the held-out text-to-video prompts at SIZE x SIZE, export them to MP4 and read them back: "
        "shape recall and outline softness as an artist gets them (the upscaler draws frames above 64x64)",
    )
    p.add_argument("--only-exported", action="store_true", help="with --size, skip the 64x64 evaluation")
    p.add_argument(
        "--no-upscaler", action="store_true", help="with --size, export the model's own frames, resampled by ffmpeg"
    )
    args = p.parse_args(argv)
    backend = open_backend(args.model)
    # this evaluates the pixel model, camera clips included; the camera model has its own measure
    # (bench/bench_photo_animation.py, engine.training.camera_eval)
    backend.camera_folder = None
    if args.no_upscaler:
        backend.upscaler_folder = None
    result: dict = {"model": args.model}
    report = ""
    if not args.only_exported:
        progress = sys.stderr.isatty()
        result |= evaluate(
            backend, args.steps, args.guidance, args.seeds, args.image_prompts, args.camera_pictures, progress
        )
        report = format_report(result)
    if args.size:
        combos = sorted(held_out_combos())
        result["exported"] = exported_text_to_video(
            backend, combos, args.size, args.steps, args.guidance, args.seeds, sys.stderr.isatty()
        )
        report = format_report(result) if not args.only_exported else exported_line(result["exported"])
    if args.photographs:
        result["photographs"] = {k: v for k, v in photograph_scores(args.model).items() if k != "per_clip"}
        report += "\n" + photograph_line(result["photographs"])
    print(report)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
