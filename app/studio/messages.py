"""One line for the message area, whatever went wrong."""

from __future__ import annotations

from engine.api.errors import KinemoError


def describe(exc: BaseException) -> str:
    """One line for the message area."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, KinemoError) or type(exc).__name__ == "ExportError":
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
