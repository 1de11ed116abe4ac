"""Prompt helpers that need no Qt and no torch: camera phrases, unknown words, model traits."""

from __future__ import annotations

import re
from functools import lru_cache

from engine.kinemo.vocabulary import PICTURE_MOVES, camera_caption, tokenize
from engine.registry.resolve import STARTER_FAST_ID, STARTER_ID, is_kinemo_folder

BUNDLED_IDS = (STARTER_ID, STARTER_FAST_ID)
_CAMERA = re.compile(r"(?:,\s*)?\bthe camera (" + "|".join(re.escape(m) for m in PICTURE_MOVES) + r")\b", re.IGNORECASE)


@lru_cache(maxsize=64)  # asked on every keystroke; a folder's config does not change under us
def is_bundled_family(model: str) -> bool:
    """True for the starter model and for local folders holding a Kinemo DiT (same vocabulary)."""
    return model in BUNDLED_IDS or is_kinemo_folder(model)


def camera_moves_for(model: str) -> tuple[str, ...]:
    """The camera moves a model understands over a picture ("the camera pans left", ...); () if none."""
    return PICTURE_MOVES if is_bundled_family(model) else ()


def camera_move_in(prompt: str) -> str | None:
    """The camera move named in the prompt, e.g. "pans left", or None."""
    match = _CAMERA.search(prompt)
    return match.group(1).lower() if match else None


def with_camera_move(prompt: str, move: str | None) -> str:
    """Replace the prompt's "the camera ..." phrase with move's, insert it, or (move None) remove it."""
    stripped = prompt.strip()
    if move is None:
        return _CAMERA.sub("", stripped).strip(" ,")
    phrase = camera_caption(move)
    if _CAMERA.search(stripped):
        return _CAMERA.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + move, stripped, count=1)
    if not stripped:
        return phrase
    return f"{stripped.rstrip(' ,.')}, {phrase}"


def unknown_words(prompt: str, model: str) -> tuple[str, ...]:
    """Words of the prompt the model cannot follow (only known for the bundled family)."""
    if not is_bundled_family(model):
        return ()
    return tuple(dict.fromkeys(tokenize(prompt).unknown_words))
