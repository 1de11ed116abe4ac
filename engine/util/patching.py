"""Attaching a stand-in to a model from outside and taking it off again: the one mechanism every cache and
acceleration uses (conditioning K/V, the rolling temporal K/V, ONNX blocks and motion modules), so the
models' own code stays as it is and every patch is undone however the run ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_MODULE_SLOTS = ("_modules", "_parameters", "_buffers")  # where torch.nn.Module keeps what looks like attributes


def _own(target: Any, name: str) -> bool:
    """True when target holds name itself (not only through its class, e.g. a method)."""
    here = vars(target)
    return name in here or any(name in here.get(slot, {}) for slot in _MODULE_SLOTS)


@contextmanager
def patched(replacements: Iterable[tuple[Any, Any, Any]]) -> Iterator[None]:
    """Within the block, target[key] (an int key: an item of a list-like) or target.key (a str) is new;
    afterwards each is what it was: the old value put back, or the instance attribute removed so the
    class's own (a method) shows through again."""
    undo = []
    try:
        for target, key, new in replacements:
            if isinstance(key, int):
                undo.append((target, key, target[key], True))
                target[key] = new
            else:
                undo.append((target, key, getattr(target, key), _own(target, key)))
                setattr(target, key, new)
        yield
    finally:
        for target, key, old, own in reversed(undo):
            if isinstance(key, int):
                target[key] = old
            elif own:
                setattr(target, key, old)
            else:
                delattr(target, key)
