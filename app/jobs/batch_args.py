"""`kinemo batch`'s arguments."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", type=Path, help="a JSON Lines file: one request per line")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the folder the clips go to")
