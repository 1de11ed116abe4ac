"""Draw docs/text_to_video.jpg: frames 0, 8 and 15 of three held-out prompts made by the bundled models at 512x512.

python docs/make_text_to_video_strip.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.backends.base import open_backend

PROMPTS = (  # held-out combinations: the model never saw these captions
    "a purple triangle moves right on a white background",
    "an orange square grows on a navy background",
    "a cyan circle moves right on a white background",
)


def main() -> None:
    backend = open_backend("kinemo-starter")
    rows = []
    for seed, prompt in enumerate(PROMPTS):
        request = GenerationRequest(prompt, width=512, height=512, seed=seed)
        frames = np.concatenate([e.frames for e in backend.generate(request) if isinstance(e, Frames)])
        rows.append(np.concatenate([frames[i] for i in (0, 8, 15)], axis=1))
    strip = Image.fromarray(np.concatenate(rows, axis=0)).resize((768, 768), Image.Resampling.LANCZOS)
    strip.save(Path(__file__).with_name("text_to_video.jpg"), quality=90)


if __name__ == "__main__":
    main()
