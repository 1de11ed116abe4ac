"""The `kinemo` command line: generate a clip, extend one, read a clip's record back.

Bad input ends with one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from app.cli_args import UsageError, build_parser, run_options
from app.cli_output import EventPrinter
from app.jobs.request_defaults import check_inputs, fast_loras, fast_settings, picture_size, video_defaults

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130


def choose_format(output: Path, requested: str | None) -> str:
    """The export format: --format if given (checked against the extension), else the extension."""
    from export.formats import FORMATS

    suffix = output.suffix.lower().lstrip(".")
    if requested is None:
        if suffix in FORMATS and suffix != "png":
            return suffix
        if output.is_dir():
            raise UsageError(f"output is a folder, expected a file name: {output} (or --format png into a new folder)")
        raise UsageError(f"cannot tell the format from {output.name!r}; name it .mp4, .gif or .webm, or add --format")
    if suffix in FORMATS and suffix != requested:
        raise UsageError(f"--format {requested} does not match the output's extension .{suffix}")
    return requested


def peak_memory_mb() -> float:
    """This process's peak resident memory. On Linux from VmHWM: ru_maxrss survives exec, so a
    process started by a large parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def build_request(args: argparse.Namespace):
    """(backend, request) from the flags, validated: nothing is loaded yet."""
    from engine.api.request import GenerationRequest
    from engine.backends.base import open_backend
    from engine.registry.resolve import fast_model

    options = run_options(args)
    model = fast_model(args.model) if args.fast else args.model
    backend = open_backend(model, options)
    given = {k: getattr(args, k) for k in ("frames", "fps", "width", "height", "steps", "guidance")}
    defaults = backend.defaults()
    if args.image and args.width is None and args.height is None:  # the clip takes the picture's own aspect
        defaults.update(picture_size(args.image))
    controls = control_fields(args)  # the flags' own rules first, before any file is read
    if args.video and not args.image:  # a re-rendered clip keeps its aspect and, at most, its length
        defaults.update(video_defaults(args.video, backend, defaults, sized=args.width or args.height))
    defaults.update(fast_settings(backend, args.fast))
    chosen = {**defaults, **{k: v for k, v in given.items() if v is not None}}
    image = str(args.image) if args.image else None
    request = GenerationRequest(
        prompt=args.prompt,
        negative_prompt=args.negative,
        model=model,
        image=image,
        seed=args.seed,
        eta=args.eta,
        **chosen,
        **controls,
    )
    if args.fast:
        request = request.with_changes(loras=fast_loras(backend) + request.loras)
        say_fast(args.model, model, fast_loras(backend), request)
    return backend, request.validate()


def say_fast(asked: str, model: str, loras: tuple, request) -> None:
    """Which fast version --fast used, on stderr: another model, or a distillation LoRA on the same one."""
    how = f"{model}" if model != asked else f"{asked} with the distillation LoRA {loras[0].name}" if loras else asked
    print(f"--fast: {how}, {request.steps} steps, guidance {request.guidance:g}", file=sys.stderr)


def control_fields(args: argparse.Namespace) -> dict:
    """The request fields of generate's creative controls (engine.api.controls)."""
    from engine.api.controls import LoraWeight, PromptChange

    fields: dict = {
        "loras": tuple(LoraWeight.parse(text) for text in args.lora),
        "prompt_changes": tuple(PromptChange.parse(text) for text in args.prompt_at),
    }
    for name in ("last_image", "video"):
        if getattr(args, name):
            fields[name] = str(getattr(args, name))
    if args.strength is not None:
        if not args.video:
            raise UsageError("--strength says how much of --video to re-render; add --video PATH")
        if not 0 < args.strength <= 1:
            raise UsageError(f"--strength must be above 0 and at most 1, got {args.strength:g}")
        fields["strength"] = args.strength
    return fields


def check_outputs(args: argparse.Namespace, fmt: str, request):
    """The export settings, with every destination checked before any work."""
    from export import ExportSettings, check_destination

    settings = ExportSettings(fmt, request.fps, request.width, request.height, args.quality).validate()
    check_destination(args.output, settings)
    if args.stats is not None:
        if Path(args.stats).expanduser().resolve() == Path(args.output).expanduser().resolve():
            raise UsageError("--stats names the output clip itself; give the stats a file of their own")
        check_destination(args.stats, ExportSettings())
    return settings


def stream_to_file(backend, request, args: argparse.Namespace, settings, printer: EventPrinter) -> float:
    """Generate, streaming finished frames into the encoder (app.jobs.render); returns the export's seconds. A
    failure (or Ctrl+C) aborts the writer, so the file at the output path is the old one or a whole new one."""
    from app.jobs.render import SoundLeftOut, render_clip

    def show(event) -> None:
        if isinstance(event, SoundLeftOut):  # a note, not a warning: the user chose the format
            print(f"note: {event.message}", file=sys.stderr)
        else:
            printer.show(event)

    try:
        stats = render_clip(
            backend, request, args.output, settings, quality=args.quality, audio=args.audio, on_event=show
        )
    finally:
        printer.close()
    return stats["export_seconds"]


def run_generate(args: argparse.Namespace, build=build_request) -> int:
    """generate (and extend, with build=app.cli_extend.build_extend_request): build makes (backend, request)."""
    from engine.util.files import atomic_write_bytes

    started = time.perf_counter()
    # 1. validate everything before any work: request, destinations, inputs
    fmt = choose_format(args.output, args.format)
    backend, request = build(args)
    settings = check_outputs(args, fmt, request)
    request = check_inputs(backend, request)

    # 2. generate, streaming finished frames into the encoder
    printer = EventPrinter()
    export_seconds = stream_to_file(backend, request, args, settings, printer)

    # 3. report
    stats = dict(printer.stats, export_seconds=export_seconds)
    stats["total_seconds"] = time.perf_counter() - started
    stats["peak_memory_mb"] = peak_memory_mb()
    stats = {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}
    if args.stats is not None:
        try:
            atomic_write_bytes(args.stats, (json.dumps(stats, indent=2) + "\n").encode())
        except OSError as exc:
            from export.formats import ExportError

            raise ExportError(f"the clip is written, but not the stats file {args.stats}: {exc.strerror}") from None
    print(args.output)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from export import read_record
    from export.streams import read_streams

    record = read_record(args.clip)
    record["streams"] = read_streams(args.clip)  # what the file holds: video, and sound where it has any
    print(json.dumps(record, indent=2, ensure_ascii=False))
    return 0


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled as Ctrl+C is, so the run stops cleanly and the old file stays."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_on_signals() -> None:
    """SIGTERM (kill, a closing session manager) and SIGHUP (a closed terminal) stop a run the way Ctrl+C does."""
    import signal

    def stop(signum, frame):
        raise Stopped(signum)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `kinemo info CLIP | head`: the reader left; nothing more to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _main(argv: list[str] | None) -> int:
    from engine.api.errors import Cancelled, InvalidRequest, KinemoError
    from export.formats import ExportError

    if argv is None:  # the command itself (tests call main with arguments and keep their own handlers)
        stop_on_signals()
    try:
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            return run_generate(args)
        if args.command == "extend":
            from app.cli_extend import build_extend_request

            return run_generate(args, build_extend_request)
        if args.command == "batch":
            from app.jobs.batch_cli import run_batch

            return run_batch(args)
        if args.command == "serve":
            from app.serve.serve_cli import run_serve

            return run_serve(args)
        if args.command == "models":
            from app.models_cli import run_models

            return run_models(args)
        if args.command == "vocabulary":
            from engine.kinemo.vocabulary import describe_vocabulary

            print(describe_vocabulary())
            return 0
        if args.command == "studio":
            from app import run_studio  # Qt is imported only here

            return run_studio([])
        return run_info(args)
    except (UsageError, InvalidRequest, ExportError) as exc:
        print(f"kinemo: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Stopped as stop:
        print(f"kinemo: stopped by signal {stop.signum}; nothing was written", file=sys.stderr)
        return 128 + stop.signum
    except (KeyboardInterrupt, Cancelled):
        print("kinemo: cancelled; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    except KinemoError as exc:
        print(f"kinemo: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
