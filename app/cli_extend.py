"""`kinemo extend CLIP -o OUT`: the request that continues a clip, from the request embedded in it.

The continuation is the clip's own request with extends=CLIP: same model, prompt, seed and settings unless a flag
says otherwise, at the clip's size and frame rate. The backend yields the clip's frames, then the new ones
(engine.api.request: extends), so OUT holds both in one file and records how the continuation was made.
"""

from __future__ import annotations

import argparse

from app.cli_args import UsageError, run_options

DEFAULT_NEW_FRAMES = 64  # at most this many new frames unless --frames says otherwise


def build_extend_request(args: argparse.Namespace):
    """(backend, request) that continue args.clip; nothing is loaded yet."""
    from engine.api.controls import LoraWeight
    from engine.backends.base import open_backend
    from engine.registry.resolve import fast_model
    from engine.util.videos import load_video

    frames, fps = load_video(args.clip)  # an unusable clip is bad input, said here before any work
    base = clip_request(args, fps)
    model = args.model or base.model
    options = run_options(args)
    model = fast_model(model) if args.fast else model
    backend = open_backend(model, options)
    chosen = {k: v for k, v in backend.defaults().items() if k in ("steps", "guidance")} if args.model else {}
    if args.steps is not None:
        chosen["steps"] = args.steps
    height, width = frames.shape[1:3]
    new_frames = args.frames or min(len(frames), DEFAULT_NEW_FRAMES)
    request = base.continuation(str(args.clip), new_frames).with_changes(
        model=model,
        width=width - width % 2,
        height=height - height % 2,
        seed=base.seed if args.seed is None else args.seed,
        loras=base.loras + tuple(LoraWeight.parse(text) for text in args.lora),
        **chosen,
    )
    if args.prompt:
        request = request.with_changes(prompt=args.prompt)
    return backend, request.validate()


def clip_request(args: argparse.Namespace, fps: float | None):
    """The request embedded in the clip; a clip without one (not made by Kinemo) needs --model and --prompt,
    and keeps its own frame rate."""
    from engine.api.errors import InvalidRequest
    from engine.api.request import GenerationRequest
    from export import read_record
    from export.formats import ExportError

    try:
        record = read_record(args.clip)
    except ExportError:
        record = None
    if record is None or "request" not in record:
        if not (args.model and args.prompt):
            raise UsageError(f"{args.clip} carries no Kinemo record; say how to continue it with --model and --prompt")
        return GenerationRequest(prompt=args.prompt, model=args.model, fps=min(max(round(fps or 8), 1), 60))
    try:
        return GenerationRequest.from_dict(record["request"])
    except InvalidRequest as exc:
        raise UsageError(f"the record in {args.clip} is not a request Kinemo can repeat: {exc}") from None
