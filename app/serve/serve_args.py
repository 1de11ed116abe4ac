"""`kinemo serve`'s arguments: where it listens, its limits, and how every job runs (the server's run options).

The run flags mirror generate's (app/cli_args.py) with the choices engine.api.run_options defines; they are
declared here rather than borrowed because app.cli_args imports this module.
"""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY_MB = 64  # a JSON body with a first and a last picture, or a short clip to re-render, in base64
DEFAULT_PREVIEW_EVERY = 5  # steps between two previews on a job's event stream


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: this machine only)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one (printed)"
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY_MB,
        help=f"larger request bodies are refused with 413 before they are read (default {DEFAULT_MAX_BODY_MB})",
    )
    parser.add_argument(
        "--preview-every",
        type=int,
        default=DEFAULT_PREVIEW_EVERY,
        metavar="N",
        help=f"send a small preview on a job's event stream at most every N steps (default {DEFAULT_PREVIEW_EVERY})",
    )
    _add_run_arguments(parser)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """How every job runs on this server: generate's run flags."""
    from engine.api.run_options import ATTENTION_CHOICES, CACHE_CHOICES, MEMORY_MODES

    parser.add_argument(
        "--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cuda, cuda:N, mps or cpu"
    )
    parser.add_argument("--hf-token", help="Hugging Face token for gated models (default: HF_TOKEN or a saved login)")
    parser.add_argument("--memory", choices=MEMORY_MODES, default="auto", help="as for generate (default auto)")
    parser.add_argument("--quantize", choices=["int8"], help="keep the denoiser's weights in int8")
    parser.add_argument("--onnx", action="store_true", help="the bundled model's whole step in onnxruntime (CPU)")
    parser.add_argument("--onnx-temporal", action="store_true", help="run the temporal attention in onnxruntime")
    parser.add_argument("--no-kv-cache", dest="kv_cache", action="store_false", help="as for generate")
    parser.add_argument("--cache", choices=CACHE_CHOICES, default="off", help="a step cache, as for generate")
    parser.add_argument("--attention", choices=ATTENTION_CHOICES, default="auto", help="attention backend on CUDA")
    parser.add_argument("--compile", action="store_true", help="compile the denoiser's repeated blocks (CUDA)")


def run_options(args: argparse.Namespace):
    """The RunOptions every job on this server runs with (the hub token from --hf-token, HF_TOKEN or a login)."""
    from app.run_flags import options_from_flags
    from engine.registry.hub import token_from

    return options_from_flags(args, token_from(args.hf_token)).validate()
