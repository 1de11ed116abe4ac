"""Write a model folder's MODEL_CARD.md from its config (training record) and evaluation JSON.

python -m engine.training.model_card assets/kinemo-starter --evaluation runs/evaluation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.training.evaluate import format_report
from engine.training.synthetic import HELD_OUT_COUNT, all_combos


def object_weighting(training: dict) -> str:
    """How the training loss weighted the object's pixels, as a clause of the card's architecture line."""
    weight = training.get("object_weight", 0.0)
    return f"; pixels on and within 2 px of the object weigh {1 + weight:g}x in the loss" if weight else ""


def input_blurring(training: dict) -> str:
    """How training blurred the model's noisy input, as a clause of the card's architecture line."""
    rate = training.get("blur_rate", 0.0)
    if not rate:
        return ""
    return (
        f"; {100 * rate:g} % of clips are noised from a copy blurred by a Gaussian of sigma 0.5-{training.get('max_blur', 2.0):g} px "
        "while the target stays sharp"
    )


def timestep_sampling(training: dict) -> str:
    """How training drew timesteps, as a clause of the card's architecture line."""
    share = training.get("mid_share", 0.0)
    if not share:
        return "; timesteps uniform over the schedule"
    low, high = training.get("mid_range", (300, 800))
    return f"; {100 * share:g} % of timesteps drawn from {low}-{high}, the rest uniform over the schedule"


def input_perturbation(training: dict) -> str:
    """The extra input noise of training, as a clause of the card's architecture line."""
    gamma = training.get("input_perturbation", 0.0)
    return (
        f"; the input's noise carries {gamma:g} x an extra Gaussian that the target leaves out (input perturbation)"
        if gamma
        else ""
    )


def finishing_stage(training: dict) -> str:
    """The lumpy-outline finishing stage of training, as a clause of the card's architecture line."""
    rate, start, steps = training.get("lumpy_rate", 0.0), training.get("finish_from", 0), training.get("steps", 0)
    if not rate or start >= steps:
        return ""
    return (
        f"; over the last {steps - start} steps (from step {start}), {100 * rate:g} % of object clips are noised from a copy "
        "whose outline is made lumpy (bumps of up to about 2 px) while the target stays clean"
    )


def card(folder: Path, evaluation: dict, command: str, notes: str = "") -> str:
    config = json.loads((folder / "config.json").read_text())
    training = config.get("_training", {})
    weights = folder / "model.safetensors"
    arch = {
        k: config.get(k, 0)
        for k in (
            "size",
            "max_frames",
            "patch",
            "dim",
            "depth",
            "heads",
            "text_dim",
            "text_depth",
            "refiner",
            "refiner_features",
            "refiner_input",
            "overlap_decoder",
            "token_input",
        )
    }
    size_flag = f" --size {evaluation['exported']['size']}" if evaluation.get("exported") else ""
    steps, batch = training.get("steps", 0), training.get("batch", 0)
    short, every = training.get("short_frames"), training.get("full_every")
    window = config["max_frames"]
    if short and every:  # short steps see short-frame subsets of window * batch / short clips
        clips = sum(batch if i % every == 0 else batch * window // short for i in range(steps))
        schedule = (
            f"{steps} steps: every {every}th step whole {window}-frame windows of {batch} clips, the others "
            f"{short} of the {window} frames (the first always kept) of {batch * window // short} clips"
        )
    else:
        clips = steps * batch
        schedule = f"{steps} steps of batch {batch} clips"
    return f"""# kinemo-starter

Kinemo's bundled text- and image-to-video model: {weights.stat().st_size / 1e6:.1f} MB of fp32 safetensors,
trained from scratch on clips drawn by `engine/training/synthetic.py`. It runs on any CPU and needs no download.

## How it was made

```
{command}
```

- {schedule} ({clips} clips seen), AdamW lr {training.get("lr")}, EMA {training.get("ema")}, seed {training.get("seed")}
- measured training time: {training.get("train_seconds", 0) / 60:.1f} minutes of optimiser steps on {training.get("device")} (2 CPU cores), forward passes in {training.get("precision", "fp32")}
{notes}
- data: procedurally rendered 16-frame 64x64 clips, 75 % object clips (one of {len(all_combos())} visible
  colour/shape/motion/background combinations, {HELD_OUT_COUNT} of them held out and never shown), 25 % camera moves
  over procedural pictures; the first frame is given as conditioning for 30 % of object clips and 60 % of camera clips;
  10 % of captions are dropped for classifier-free guidance.
- architecture: {arch} (refiner: the width of the full-resolution convolutional refiner after the patch
  decoder, 0 for none; refiner_input and token_input: what the refiner and the patch embedding see of the noisy
  frame, x_t itself or sqrt(alpha_bar_t) x_t; overlap_decoder: each token draws a window twice its patch's size, see
  `engine/kinemo/model.py`); x-prediction (`prediction_type: {config["prediction_type"]}`), cosine schedule with every SNR
  scaled by {config["snr_scale"]:.4g}, min-SNR-4 loss weighting{object_weighting(training)}{input_blurring(training)}{timestep_sampling(training)}{input_perturbation(training)}{finishing_stage(training)}.

## Measured quality (held-out prompts: `python -m engine.training.evaluate{size_flag}`)

```
{format_report(evaluation)}
```

## Limits

It knows only the words of its grammar (`engine/kinemo/vocabulary.py`); other words are reported and ignored. Native output
is a 16-frame window at 64x64; larger text-to-video clips are drawn at their size by the upscaler
(`assets/kinemo-upscaler`), and longer clips are made window by window. It draws one flat-coloured shape on a plain background, or moves a
camera over the picture it is given; it knows nothing else. Its outlines wobble by a pixel or two at
64x64 (the upscaler draws them crisp, but keeps their wobble), and it has not learned camera moves without a
picture (the move checker's reading is at or below the chance of 1 in 4; with a picture the camera model moves it).
"""


def distilled_card(folder: Path, evaluation: dict, teacher_evaluation: dict | None, command: str) -> str:
    """The card of a student made by engine.training.distill, with its scores beside its teacher's."""
    config = json.loads((folder / "config.json").read_text())
    record, sampling = config.get("_distillation", {}), config.get("_sampling", {})
    size_flag = f" --size {evaluation['exported']['size']}" if evaluation.get("exported") else ""
    weights = folder / "model.safetensors"
    teacher = (
        f"\n\nIts teacher, at {teacher_evaluation['steps']} steps:\n\n```\n{format_report(teacher_evaluation)}\n```"
        if teacher_evaluation
        else ""
    )
    return f"""# {folder.name}

The bundled starter model distilled to {record.get("student_steps")} DDIM steps ({weights.stat().st_size / 1e6:.1f} MB of fp32
safetensors): `kinemo generate --fast` and the studio's Fast switch use it.

## How it was made

```
{command}
```

- teacher: `{record.get("teacher")}`, run over {record.get("teacher_steps")} DDIM steps; the student starts as a copy of it and
  learns to land, in one DDIM step, where the teacher lands after {record.get("teacher_steps", 0) // max(1, record.get("student_steps", 1))}
  of its own (one-stage trajectory distillation in the manner of progressive distillation, Salimans & Ho 2022)
- timesteps: {sampling.get("timesteps")} ({sampling.get("spacing")} spacing)
- {record.get("steps")} optimiser steps of {record.get("batch")} teacher trajectories, AdamW lr {record.get("lr")}, EMA {record.get("ema")},
  seed {record.get("seed")}; {record.get("train_seconds", 0) / 60:.1f} minutes on {record.get("device")} (2 CPU cores)
- data: the teacher's own clips from the synthetic world's captions (held-out combinations excluded), 16 frames, 64x64

## Measured quality (held-out prompts: `python -m engine.training.evaluate --model {folder} --steps {record.get("student_steps")}{size_flag}`)

```
{format_report(evaluation)}
```{teacher}
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m engine.training.model_card")
    p.add_argument("folder", type=Path)
    p.add_argument("--evaluation", type=Path, required=True)
    p.add_argument("--command", default="python -m engine.training.train")
    p.add_argument("--notes", default="", help="lines to add under the training record (e.g. how the run was shared)")
    p.add_argument("--teacher-evaluation", type=Path, help="for a distilled model: its teacher's evaluation JSON")
    args = p.parse_args(argv)
    evaluation = json.loads(args.evaluation.read_text())
    if "_distillation" in json.loads((args.folder / "config.json").read_text()):
        teacher = json.loads(args.teacher_evaluation.read_text()) if args.teacher_evaluation else None
        text = distilled_card(args.folder, evaluation, teacher, args.command)
    else:
        text = card(args.folder, evaluation, args.command, args.notes)
    (args.folder / "MODEL_CARD.md").write_text(text)


if __name__ == "__main__":
    main()
