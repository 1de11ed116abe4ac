"""`kinemo batch`: being written."""

from __future__ import annotations


def run_batch(args) -> int:
    from app.cli_args import UsageError

    raise UsageError("kinemo batch is not available yet")
