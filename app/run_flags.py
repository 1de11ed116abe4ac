"""The run flags every command that runs the engine shares (generate, extend, batch, serve), read into RunOptions."""

from __future__ import annotations

import argparse


def options_from_flags(args: argparse.Namespace, token: str | None, checkpoint_dir: str | None = None):
    """RunOptions from the run flags every command that runs the engine shares (generate, extend, batch, serve)."""
    from engine.api.run_options import RunOptions

    return RunOptions(
        device=args.device,
        memory=args.memory,
        quantize=args.quantize,
        onnx_temporal=args.onnx_temporal,
        onnx_denoiser=args.onnx,
        kv_cache=args.kv_cache,
        token=token,
        cache=args.cache,
        attention=args.attention,
        compile=args.compile,
        checkpoint_dir=checkpoint_dir,
    )
