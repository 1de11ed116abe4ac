"""`kinemo batch`'s own arguments; the run flags it shares with generate are added by app.cli_args."""

from __future__ import annotations

import argparse
from pathlib import Path

LOCAL = "local"  # --ray without an address: a Ray runtime started on this machine


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "jobs",
        type=Path,
        help="a JSON Lines file: one request a line (the fields of a clip's embedded request: prompt, seed, frames, "
        "width, height, model, image, ...), plus an optional name (the output's, default: the line number) and format",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="the folder the clips go to (made if needed); it keeps "
        "the batch's journal, so running the same command again skips finished jobs and redoes the rest",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help="render on Ray: alone, a runtime started on this machine; with an address (HOST:6379, or auto), "
        'the cluster `ray start --head` started there. Needs pip install "kinemo[cluster]"',
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="Ray workers, each keeping its model loaded (default: the cluster's CPUs, "
        "and one per GPU for jobs whose model needs one)",
    )
