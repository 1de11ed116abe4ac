"""`kinemo serve`: being written."""

from __future__ import annotations


def run_serve(args) -> int:
    from app.cli_args import UsageError

    raise UsageError("kinemo serve is not available yet")
