"""The `kinemo` command line: generate a clip, read a clip's record back.

Bad input ends with one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    from engine.request import DEFAULT_MODEL, GenerationRequest
    from export.formats import FORMATS

    defaults = GenerationRequest(prompt="-")
    parser = _Parser(prog="kinemo", description="Kinemo: text-to-video and image-to-video on your own machine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser("generate", help="generate a clip from a prompt (and optionally a first-frame picture)")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", required=True, type=Path, help="output file, or a new folder for --format png")
    gen.add_argument("--image", type=Path, help="first-frame picture for image-to-video")
    gen.add_argument("--frames", type=int, default=defaults.frames)
    gen.add_argument("--fps", type=int, default=defaults.fps)
    gen.add_argument("--width", type=int, default=defaults.width)
    gen.add_argument("--height", type=int, default=defaults.height)
    gen.add_argument("--steps", type=int, default=defaults.steps)
    gen.add_argument("--guidance", type=float, default=defaults.guidance)
    gen.add_argument("--seed", type=int, default=defaults.seed)
    gen.add_argument("--eta", type=float, default=defaults.eta, help="DDIM stochasticity, 0 = deterministic")
    gen.add_argument("--negative", default="", help="negative prompt")
    gen.add_argument("--model", default=DEFAULT_MODEL)
    gen.add_argument("--format", choices=FORMATS, help="default: from the output's extension, else mp4")
    gen.add_argument("--quality", type=int, default=80, help="1 (smallest) .. 100 (best)")
    gen.add_argument("--stats", type=Path, help="write timings and peak memory as JSON")

    info = sub.add_parser("info", help="print the generation record embedded in a Kinemo clip")
    info.add_argument("clip", type=Path)

    sub.add_parser("studio", help="open Kinemo Studio, the desktop app")
    return parser


def choose_format(output: Path, requested: str | None) -> str:
    """The export format: --format if given (checked against the extension), else the extension."""
    from export.formats import FORMATS

    suffix = output.suffix.lower().lstrip(".")
    if requested is None:
        if suffix in FORMATS and suffix != "png":
            return suffix
        raise UsageError(f"cannot tell the format from {output.name!r}; name it .mp4, .gif or .webm, or add --format")
    if suffix in FORMATS and suffix != requested:
        raise UsageError(f"--format {requested} does not match the output's extension .{suffix}")
    return requested


def peak_memory_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def run_generate(args: argparse.Namespace) -> int:
    from engine.backends import resolve_backend
    from engine.events import Finished, Frames, Loaded, Notice, Progress
    from engine.images import file_sha256, load_image
    from engine.model_files import atomic_write_bytes
    from engine.request import GenerationRequest
    from export import ClipWriter, ExportSettings, check_destination, make_record
    from tqdm import tqdm

    started = time.perf_counter()
    # 1. validate everything before any work: request, image, destinations
    fmt = choose_format(args.output, args.format)
    request = GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative, model=args.model,
        image=str(args.image) if args.image else None, frames=args.frames, fps=args.fps, width=args.width,
        height=args.height, steps=args.steps, guidance=args.guidance, seed=args.seed, eta=args.eta,
    ).validate()
    settings = ExportSettings(fmt, request.fps, request.width, request.height, args.quality).validate()
    check_destination(args.output, settings)
    if args.stats is not None:
        check_destination(args.stats, ExportSettings())
    if args.image:
        load_image(args.image)
        request = request.with_changes(image_sha256=file_sha256(args.image))
    backend = resolve_backend(request.model)
    backend.check(request)

    # 2. generate, streaming finished frames into the encoder
    record = make_record(request.to_dict(), {"format": fmt, "quality": args.quality})
    writer, bar, stats = None, None, {}
    try:
        for event in backend.generate(request):
            if isinstance(event, Loaded):
                stats["load_seconds"] = event.seconds
            elif isinstance(event, Notice):
                print(f"warning: {event.message}", file=sys.stderr)
            elif isinstance(event, Progress):
                if bar is None:
                    bar = tqdm(total=event.total, desc="generating", unit="step", file=sys.stderr, leave=False)
                bar.update(1)
            elif isinstance(event, Frames):
                if writer is None:
                    export_started = time.perf_counter()
                    h, w = event.frames.shape[1:3]
                    writer = ClipWriter(args.output, settings, (w, h), record)
                    writer.open()
                writer.write(event.frames)
            elif isinstance(event, Finished):
                stats["generate_seconds"] = event.seconds
                stats.update(event.stats)
        if writer is None:
            raise RuntimeError("the backend finished without frames")
        writer.close()
        stats["export_seconds"] = time.perf_counter() - export_started
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()

    # 3. report
    stats["total_seconds"] = time.perf_counter() - started
    stats["peak_memory_mb"] = peak_memory_mb()
    stats = {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}
    if args.stats is not None:
        atomic_write_bytes(args.stats, (json.dumps(stats, indent=2) + "\n").encode())
    print(args.output)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from export import read_record

    print(json.dumps(read_record(args.clip), indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    from engine.errors import Cancelled, InvalidRequest, KinemoError
    from export.formats import ExportError

    try:
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            return run_generate(args)
        if args.command == "studio":
            from app import run_studio  # Qt is imported only here

            return run_studio([])
        return run_info(args)
    except (UsageError, InvalidRequest, ExportError) as exc:
        print(f"kinemo: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, Cancelled):
        print("kinemo: cancelled; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    except KinemoError as exc:
        print(f"kinemo: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
