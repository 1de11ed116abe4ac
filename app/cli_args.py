"""The `kinemo` command line's arguments: one parser, with generate's request, control and run flags, and extend's.

Bad arguments raise UsageError (one line, exit status 2) instead of argparse's usage block.
"""

from __future__ import annotations

import argparse
from pathlib import Path


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kinemo", description="Kinemo: text-to-video and image-to-video on your own machine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser("generate", help="generate a clip from a prompt (and optionally a first-frame picture)")
    _add_request_arguments(gen)
    _add_control_arguments(gen)
    _add_run_arguments(gen)
    _add_resume_argument(gen)

    ext = sub.add_parser("extend", help="continue a clip: the output holds the clip, then the frames that follow")
    _add_extend_arguments(ext)
    _add_run_arguments(ext)

    info = sub.add_parser("info", help="print the generation record embedded in a Kinemo clip")
    info.add_argument("clip", type=Path)

    from app.jobs.batch_args import add_batch_arguments
    from app.serve.serve_args import add_serve_arguments

    batch = sub.add_parser("batch", help="render a JSON Lines file of requests into a folder, resumably")
    add_batch_arguments(batch)
    _add_run_arguments(batch)  # the run flags apply to every job; --format is the jobs' default (mp4)
    add_serve_arguments(sub.add_parser("serve", help="serve the engine over HTTP (a bearer token guards it)"))
    sub.add_parser("studio", help="open Kinemo Studio, the desktop app")
    sub.add_parser("vocabulary", help="the words and sentences the bundled models know")

    _add_models_parser(sub)
    return parser


def _add_request_arguments(gen: argparse.ArgumentParser) -> None:
    """generate's arguments that go into the GenerationRequest."""
    from engine.api.request import DEFAULT_MODEL, GenerationRequest

    defaults = GenerationRequest(prompt="-")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", required=True, type=Path, help="output file, or a new folder for --format png")
    gen.add_argument("--image", type=Path, help="first-frame picture for image-to-video")
    # sizes, steps and guidance default to the model's own (the catalog's, or the starter model's)
    gen.add_argument("--frames", type=int, help=f"default: the model's ({defaults.frames} for {DEFAULT_MODEL})")
    gen.add_argument("--fps", type=int, help=f"default: the model's ({defaults.fps} for {DEFAULT_MODEL})")
    gen.add_argument("--width", type=int, help=f"default: the model's ({defaults.width} for {DEFAULT_MODEL})")
    gen.add_argument("--height", type=int, help=f"default: the model's ({defaults.height} for {DEFAULT_MODEL})")
    gen.add_argument("--steps", type=int, help=f"default: the model's ({defaults.steps} for {DEFAULT_MODEL})")
    gen.add_argument("--guidance", type=float, help=f"default: the model's ({defaults.guidance:g} for {DEFAULT_MODEL})")
    gen.add_argument("--seed", type=int, default=defaults.seed)
    gen.add_argument("--eta", type=float, default=defaults.eta, help="DDIM stochasticity, 0 = deterministic")
    gen.add_argument("--negative", default="", help="negative prompt")
    gen.add_argument("--model", default=DEFAULT_MODEL, help="catalog id (kinemo models list), hub id or model folder")


def _add_control_arguments(gen: argparse.ArgumentParser) -> None:
    """generate's creative controls: LoRAs, a last frame, a video to re-render, prompts that change."""
    gen.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH_OR_HUB_ID[:SCALE]",
        help="LoRA weights (.safetensors) for the denoiser, scale 1 by default; repeat for several",
    )
    gen.add_argument("--last-image", type=Path, help="last-frame picture: the clip ends on it (with --image)")
    gen.add_argument("--video", type=Path, help="a clip to re-render (video-to-video) as the prompt says")
    gen.add_argument(
        "--strength",
        type=float,
        help="how much of --video is re-rendered: 1 = all of it (from noise), near 0 = hardly anything (default 0.8)",
    )
    gen.add_argument(
        "--prompt-at",
        action="append",
        default=[],
        metavar="FRAME:TEXT",
        help="from frame FRAME on, the clip follows TEXT; repeat for several changes",
    )


def _add_extend_arguments(ext: argparse.ArgumentParser) -> None:
    """extend's arguments: the clip, where the result goes, and what may differ from the clip's own request."""
    ext.add_argument("clip", type=Path, help="a clip to continue (its embedded request says how it was made)")
    ext.add_argument("-o", "--output", required=True, type=Path, help="the clip followed by its continuation")
    ext.add_argument("--frames", type=int, help="new frames to add (default: as many as the clip has, up to 64)")
    ext.add_argument("--prompt", help="what happens next (default: the clip's own prompt)")
    ext.add_argument("--model", help="default: the model that made the clip (needed for clips without a record)")
    ext.add_argument("--steps", type=int, help="default: the clip's (or the model's)")
    ext.add_argument("--seed", type=int, help="default: the clip's seed")
    ext.add_argument("--lora", action="append", default=[], metavar="PATH_OR_HUB_ID[:SCALE]", help="as for generate")


def run_options(args: argparse.Namespace):
    """The RunOptions of generate's and extend's run flags (the hub token from --token, HF_TOKEN or a login)."""
    from app.run_flags import options_from_flags
    from engine.registry.hub import token_from

    return options_from_flags(args, token_from(args.token), resume_folder(args))


def resume_folder(args: argparse.Namespace) -> str | None:
    """With --resume, the folder beside the output where a long clip keeps its checkpoint: OUTPUT.kinemo-resume."""
    if not getattr(args, "resume", False):
        return None
    output = Path(args.output).expanduser().absolute()
    return str(output.with_name(output.name + ".kinemo-resume"))


def _add_resume_argument(gen: argparse.ArgumentParser) -> None:
    gen.add_argument(
        "--resume",
        action="store_true",
        help="make a run resumable: its state goes to OUTPUT.kinemo-resume as it runs (the bundled models after "
        "every window of a long clip, most diffusers models between steps, at most every 30 s), and the same command "
        "with --resume after a Ctrl+C, kill -9 or power cut continues from there and makes the same clip; the "
        "folder goes once the clip is made. Without --resume nothing is checkpointed",
    )


def _add_run_arguments(gen: argparse.ArgumentParser) -> None:
    """generate's arguments about how the run goes and what it writes."""
    from export.formats import FORMATS

    gen.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cuda, cuda:N, mps or cpu")
    gen.add_argument("--token", help="Hugging Face token for gated models (default: HF_TOKEN or a saved login)")
    gen.add_argument(
        "--no-kv-cache",
        dest="kv_cache",
        action="store_false",
        help="recompute the conditioning's attention keys/values at every step (same output, slower)",
    )
    gen.add_argument(
        "--memory",
        choices=("auto", "high", "low", "minimal"),
        default="auto",
        help="auto: the lightest way to run that fits the free memory (default); high: everything on the GPU; "
        "low: model offload + VAE slicing/tiling; minimal: sequential offload + VAE slicing/tiling "
        "+ fp8 weights where supported. The estimate and the choice are printed before the run",
    )
    _add_speed_arguments(gen)
    gen.add_argument("--format", choices=FORMATS, help="default: from the output's extension, else mp4")
    gen.add_argument(
        "--no-audio",
        dest="audio",
        action="store_false",
        help="leave out the sound of models that make one (LTX-2); it goes into MP4 as AAC, WebM as Opus, "
        "beside PNG frames as audio.wav",
    )
    gen.add_argument("--quality", type=int, default=80, help="1 (smallest) .. 100 (best)")
    gen.add_argument("--stats", type=Path, help="write timings and peak memory as JSON")


def _add_speed_arguments(gen: argparse.ArgumentParser) -> None:
    """The switches that trade memory, speed or exactness: int8, the fast version, ONNX, step caches, attention."""
    from engine.api.run_options import ATTENTION_CHOICES, CACHE_CHOICES

    gen.add_argument(
        "--quantize",
        choices=["int8"],
        help="keep the denoiser's weights in int8 (about 0.27x the memory; made once, then cached)",
    )
    gen.add_argument(
        "--fast",
        action="store_true",
        help="use the model's distilled few-step version (kinemo-starter-fast, AnimateDiff-Lightning, LTX distilled), "
        "or add its distillation LoRA (lightx2v 4-step for Wan 2.1 14B)",
    )
    gen.add_argument(
        "--onnx",
        action="store_true",
        help="run the bundled model's whole denoiser step as one onnxruntime graph on the CPU (exported once, then "
        "cached; the README's fast path gives its speed)",
    )
    gen.add_argument(
        "--onnx-temporal",
        action="store_true",
        help="run the temporal attention in onnxruntime: the bundled model's blocks, AnimateDiff's motion modules (exported once, then cached)",
    )
    gen.add_argument(
        "--cache",
        choices=CACHE_CHOICES,
        default="off",
        help="a step cache that skips denoiser work barely changing between steps (faster, slightly different "
        "frames); auto: the family's measured default",
    )
    gen.add_argument(
        "--attention", choices=ATTENTION_CHOICES, default="auto", help="attention backend on CUDA (auto: SDPA)"
    )
    gen.add_argument("--compile", action="store_true", help="compile the denoiser's repeated blocks (CUDA)")


def _add_models_parser(sub) -> None:
    models = sub.add_parser("models", help="list, download, inspect or remove hub models")
    models_sub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    models_sub.add_parser("list", help="the catalog and whether each model is on disk")
    for name, text in (
        ("pull", "download a model (an interrupted download keeps the files that arrived whole)"),
        ("info", "what a model is and where it is"),
        ("remove", "delete a downloaded model from the hub cache"),
    ):
        cmd = models_sub.add_parser(name, help=text)
        cmd.add_argument("model", help="catalog id or hub id")
        if name == "pull":
            cmd.add_argument("--token", help="Hugging Face token for gated models (default: HF_TOKEN or a saved login)")
