"""What the batch tests share: clips decoded, JOBS files written, the CLI run, the journal read."""

import json
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from app.cli import main


def decode(path) -> np.ndarray:
    """(n, h, w, 3) uint8 frames of a clip, or of a folder of PNG frames."""
    if Path(path).is_dir():
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(path).glob("frame_*.png"))])
    reader = imageio_ffmpeg.read_frames(str(path))
    w, h = next(reader)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def write_jobs(path, jobs) -> Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def tiny_jobs(model, count, **fields) -> list[dict]:
    return [
        {
            "prompt": f"a red circle moves right, take {i}",
            "model": model,
            "seed": i,
            "steps": 2,
            "frames": 4,
            "width": 32,
            "height": 32,
            **fields,
        }
        for i in range(count)
    ]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def journal(folder) -> dict:
    return json.loads((folder / ".kinemo-batch" / "journal.json").read_text())["jobs"]
