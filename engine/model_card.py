"""Write a model folder's MODEL_CARD.md from its config (training record) and evaluation JSON.

    python -m engine.model_card assets/kinemo-starter --evaluation runs/evaluation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.evaluate import format_report
from engine.synthetic import HELD_OUT_COUNT, all_combos


def card(folder: Path, evaluation: dict, command: str, notes: str = "") -> str:
    config = json.loads((folder / "config.json").read_text())
    training = config.get("_training", {})
    weights = folder / "model.safetensors"
    arch = {k: config[k] for k in ("size", "max_frames", "patch", "dim", "depth", "heads", "text_dim", "text_depth")}
    steps, batch = training.get("steps", 0), training.get("batch", 0)
    short, every = training.get("short_frames"), training.get("full_every")
    window = config["max_frames"]
    if short and every:  # short steps see short-frame subsets of window * batch / short clips
        clips = sum(batch if i % every == 0 else batch * window // short for i in range(steps))
        schedule = (f"{steps} steps: every {every}th step whole {window}-frame windows of {batch} clips, the others "
                    f"{short} of the {window} frames (the first always kept) of {batch * window // short} clips")
    else:
        clips = steps * batch
        schedule = f"{steps} steps of batch {batch} clips"
    return f"""# kinemo-starter

Kinemo's bundled text- and image-to-video model: {weights.stat().st_size / 1e6:.1f} MB of fp32 safetensors,
trained from scratch on clips drawn by `engine/synthetic.py`. It runs on any CPU and needs no download.

## How it was made

```
{command}
```

- {schedule} ({clips} clips seen), AdamW lr {training.get('lr')}, EMA {training.get('ema')}, seed {training.get('seed')}
- measured training time: {training.get('train_seconds', 0) / 60:.1f} minutes of optimiser steps on {training.get('device')} (2 CPU cores)
{notes}
- data: procedurally rendered 16-frame 64x64 clips, 75 % object clips (one of {len(all_combos())} visible
  colour/shape/motion/background combinations, {HELD_OUT_COUNT} of them held out and never shown), 25 % camera moves
  over procedural pictures; the first frame is given as conditioning for 30 % of object clips and 60 % of camera clips;
  10 % of captions are dropped for classifier-free guidance.
- architecture: {arch}; x-prediction (`prediction_type: {config['prediction_type']}`), cosine schedule with every SNR
  scaled by {config['snr_scale']:.4g}, min-SNR-4 loss weighting.

## Measured quality (held-out prompts: `python -m engine.evaluate`)

```
{format_report(evaluation)}
```

## Limits

It knows only the words of its grammar (`engine/vocabulary.py`); other words are reported and ignored. Native output
is a 16-frame window at 64x64, scaled up on export; longer clips are made window by window. It draws one flat-coloured shape on a plain background, or moves a
camera over the picture it is given; it knows nothing else.
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m engine.model_card")
    p.add_argument("folder", type=Path)
    p.add_argument("--evaluation", type=Path, required=True)
    p.add_argument("--command", default="python -m engine.train")
    p.add_argument("--notes", default="", help="lines to add under the training record (e.g. how the run was shared)")
    args = p.parse_args(argv)
    text = card(args.folder, json.loads(args.evaluation.read_text()), args.command, args.notes)
    (args.folder / "MODEL_CARD.md").write_text(text)


if __name__ == "__main__":
    main()
