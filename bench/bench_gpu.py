"""Diffusers called plainly against Kinemo's ways of running a denoiser, on one CUDA GPU: seconds per step, peak
VRAM and the ratios to plain diffusers, side by side.

    python bench/bench_gpu.py [--only ID,...] [--steps 4] [--frames N] [--budget 450] [--json OUT] [--cpu-smoke]

Families: Wan 2.1-1.3B, Wan 2.2-TI2V-5B, LTX-Video and CogVideoX-2B, each denoiser built full size from its real
config (bench/gpu_family_configs.py; LTX-Video's and CogVideoX-2B's below) with random bf16 weights allocated
straight on the GPU (bench/bench_gpu_families.py's materialise): nothing is downloaded. Each row runs a warm-up
step and --steps timed steps at the family's catalog size, frames and guidance (each step = the forward passes its
pipeline runs: cond and uncond), the timestep falling from 999 as a sampler's does, so step caches see steps change.

Rows, in this order for every family before the next kind starts (so a short --budget keeps the important ones):
  plain           the denoiser on the GPU as `pipe.to("cuda")` leaves it: diffusers with nothing of Kinemo's
  none, fp8, group_offload, sequential_offload
                  Kinemo's memory policies (engine.backends.diffusers.placement.apply_policy)
  int8            Kinemo's --quantize int8 (engine.accel.quantize.quantize_model: optimum-quanto weights)
  cache <name>    Kinemo's --cache <name>, validated by engine.backends.run_checks.diffusers_cache and configured by
                  engine.backends.diffusers.step_caches; a cache Kinemo refuses is a row with its note, not an error
  compile         Kinemo's --compile (engine.backends.diffusers.attention.apply_speed_options); its first step,
                  which compiles, is reported apart
Peak VRAM is torch.cuda.max_memory_allocated from after placement (weights included). ×time and ×VRAM divide by
the family's plain row.

--budget (seconds, default 450: the whole run stays under 8 minutes on one H100): a row starts only if its
expected cost (from the family's plain step time, row_cost) fits in what is left; else it is printed as skipped.
On a machine without CUDA the script says so and exits 0. --cpu-smoke runs every row on the CPU with shrunk
configs (one layer), 64x64 pixels and 9 frames: it checks the script; nothing is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # run from anywhere, installed or not

import bench_gpu_families as families  # noqa: E402
from gpu_family_configs import BENCHES, Bench, Tensors  # noqa: E402

from engine.api.errors import InvalidRequest  # noqa: E402
from engine.api.run_options import CACHE_CHOICES, RunOptions  # noqa: E402

NO_CUDA = "bench_gpu.py needs a CUDA GPU: torch sees none here, so nothing was measured (--cpu-smoke checks the script)"
CACHES = tuple(c for c in CACHE_CHOICES if c != "off")
POLICIES = ("none", "fp8", "group_offload", "sequential_offload")
KINDS = (
    "plain",
    "none",
    "fp8",
    "int8",
    *(f"cache {c}" for c in CACHES),
    "compile",
    "group_offload",
    "sequential_offload",
)
# a row's expected cost in plain steps (build and warm-up included), and what compiling adds on top
COST = {"plain": 1.0, "none": 1.0, "fp8": 1.3, "int8": 2.0, "group_offload": 2.0, "sequential_offload": 20.0}
BUILD_SECONDS, COMPILE_SECONDS, UNKNOWN_STEP = 15.0, 90.0, 10.0
MB = 2**20

# scripts/convert_ltx_to_diffusers.py (huggingface/diffusers), the 0.9.0 transformer: LTXVideoTransformer3DModel's
# defaults, written out
LTX_VIDEO = dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32)
LTX_VIDEO.update(attention_head_dim=64, cross_attention_dim=2048, num_layers=28, activation_fn="gelu-approximate")
LTX_VIDEO.update(qk_norm="rms_norm_across_heads", norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096)
LTX_VIDEO.update(attention_bias=True, attention_out_bias=True)
TINY_LTX = dict(num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16, num_layers=1, caption_channels=16)
# THUDM/CogVideoX-2b transformer/config.json
COGVIDEOX_2B = dict(num_attention_heads=30, attention_head_dim=64, in_channels=16, out_channels=16, num_layers=30)
COGVIDEOX_2B.update(text_embed_dim=4096, time_embed_dim=512, patch_size=2, sample_width=90, sample_height=60)
COGVIDEOX_2B.update(sample_frames=49, max_text_seq_length=226, norm_eps=1e-5, use_rotary_positional_embeddings=False)
TINY_COGVIDEOX = dict(num_attention_heads=2, attention_head_dim=8, num_layers=1, text_embed_dim=16, time_embed_dim=8)
TINY_COGVIDEOX.update(sample_width=8, sample_height=8, sample_frames=9, max_text_seq_length=8)


def _ltx(cfg, b, lat, run, rand):
    f, h, w = lat  # the pipeline packs latents to tokens; rope scale = (VAE compression / fps, 32, 32)
    return dict(
        hidden_states=rand(b, f * h * w, cfg["in_channels"]),
        encoder_hidden_states=rand(b, 128, cfg["caption_channels"]),
        timestep=rand(b, fill=500.0),
        encoder_attention_mask=rand(b, 128, fill=1.0),
        num_frames=f,
        height=h,
        width=w,
        rope_interpolation_scale=(8 / run.fps, 32, 32),
    )


def _cogvideox(cfg, b, lat, run, rand):
    f, h, w = lat
    return dict(
        hidden_states=rand(b, f, cfg["in_channels"], h, w),
        encoder_hidden_states=rand(b, cfg["max_text_seq_length"], cfg["text_embed_dim"]),
        timestep=rand(b, fill=500.0),
    )


# guided steps: LTX-Video and CogVideoX run cond and uncond in one batch of 2, Wan one after the other
SUITE = {
    "wan2.1-t2v-1.3b": BENCHES["wan2.1-t2v-1.3b"],
    "wan2.2-ti2v-5b": BENCHES["wan2.2-ti2v-5b"],
    "ltx-video": Bench(
        "ltx-video", "LTXVideoTransformer3DModel", LTX_VIDEO, TINY_LTX, _ltx, ("AutoencoderKLLTXVideo", {}), (2,)
    ),
    "cogvideox-2b": Bench(
        "cogvideox-2b",
        "CogVideoXTransformer3DModel",
        COGVIDEOX_2B,
        TINY_COGVIDEOX,
        _cogvideox,
        ("AutoencoderKLCogVideoX", {}),
        (2,),
    ),
}


# -- pure helpers: the budget and the table ----------------------------------------------------------------
def row_cost(kind: str, plain_step: float | None, steps: int) -> float:
    """Seconds a row is expected to take: building, a warm-up and `steps` steps at the plain row's pace (a guess
    where the plain row has not run), slower by the kind's factor; compiling adds its own."""
    step = UNKNOWN_STEP if plain_step is None else plain_step
    factor = COST.get(kind, 1.0)  # caches and compile run at the plain pace or faster
    return BUILD_SECONDS + (steps + 1) * step * factor + (COMPILE_SECONDS if kind == "compile" else 0.0)


def fits(elapsed: float, cost: float, budget: float) -> bool:
    """Whether a row expected to take `cost` seconds can start `elapsed` seconds in (budget 0: no limit)."""
    return budget <= 0 or elapsed + cost <= budget


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else "-"


HEADER = f"{'family':<16} {'row':<20} {'s/step':>8} {'peak MB':>9} {'x time':>7} {'x VRAM':>7}  note"


def line(row: dict, plain: dict | None) -> str:
    """One row of the table; ratios to the family's plain row."""
    head = f"{row['family']:<16} {row['kind']:<20}"
    if "seconds_per_step" not in row:
        return f"{head} {'-':>8} {'-':>9} {'-':>7} {'-':>7}  {row.get('note', '')}"
    base = plain or {}
    peak = row.get("peak")
    cells = f"{row['seconds_per_step']:8.3f} " + (f"{peak / MB:9.0f}" if peak else f"{'-':>9}")
    cells += f" {ratio(row['seconds_per_step'], base.get('seconds_per_step')):>7} {ratio(peak, base.get('peak')):>7}"
    return f"{head} {cells}  {row.get('note', '')}".rstrip()


def table(rows: list[dict]) -> str:
    """Every row grouped by family, in KINDS order."""
    plains = {r["family"]: r for r in rows if r["kind"] == "plain" and "seconds_per_step" in r}
    ordered = sorted(rows, key=lambda r: (list(SUITE).index(r["family"]), KINDS.index(r["kind"])))
    return "\n".join([HEADER, *(line(r, plains.get(r["family"])) for r in ordered)])


# -- one row ------------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """A family prepared once (bench_gpu_families.prepare: its run, meta models and Kinemo's policies)."""

    plan: dict
    device: str
    dtype: object
    smoke: bool

    @property
    def run(self):
        return self.plan["run"]


def family_of(setup: Setup):
    from engine.registry.catalog import find_entry
    from engine.registry.families import FAMILIES

    return FAMILIES[find_entry(setup.run.bench.entry).family]


def refusal(kind: str, device: str, family) -> str | None:
    """Why Kinemo would not run this row here (its own one-line message), or None."""
    try:
        if kind.startswith("cache "):
            from engine.backends import run_checks
            from engine.backends.diffusers.step_caches import chosen_cache

            run_checks.diffusers_cache(RunOptions(cache=kind.split()[1]), family)
            if chosen_cache(kind.split()[1], family) == "off":
                return f"auto is off for {family.label}: no cache measured to pay on it"
        if kind == "compile":
            from engine.backends.diffusers.attention import check_speed_options

            check_speed_options(RunOptions(compile=True, device=device))
    except InvalidRequest as exc:
        return f"refused: {exc}"
    return None


def place(setup: Setup, kind: str):
    """The family's denoiser(s) built and placed as the row says; returns (pipe, models)."""
    from engine.backends.diffusers.placement import apply_policy, free_device_memory

    offloads = kind in POLICIES and setup.plan["policies"][kind].offloads and setup.device.startswith("cuda")
    where = "cpu" if offloads else setup.device  # apply_policy places a pipeline loaded on the CPU
    models = [families.materialise(m, where, setup.dtype) for m in families.meta_models(setup.run.bench, setup.smoke)]
    pipe = families.lone_pipeline(models)
    if kind in POLICIES:
        free_device_memory(setup.device)
        apply_policy(pipe, setup.plan["policies"][kind], setup.device, setup.dtype)
    elif kind == "int8":
        from engine.accel.quantize import quantize_model

        for model in models:
            quantize_model(model, "int8")
    elif kind == "compile":
        from engine.backends.diffusers.attention import apply_speed_options

        apply_speed_options(pipe, RunOptions(compile=True, device=setup.device), setup.device)
    elif kind.startswith("cache "):  # as the backend attaches it (engine.backends.diffusers.step_caches)
        from engine.backends.diffusers.step_caches import cache_config, check_blocks, chosen_cache

        name = chosen_cache(kind.split()[1], family_of(setup))
        pipe.current_timestep = 999.0  # what PAB and FasterCache read; timed_steps moves it along
        for model in models:
            check_blocks(name, model, setup.run.bench.entry)
            model.enable_cache(cache_config(name, pipe, model, guided=len(setup.run.passes) > 1))
    return pipe, models


def timed_steps(setup: Setup, model, steps: int, pipe=None) -> list[float]:
    """Seconds of a warm-up step and then of each timed step: every forward pass the step runs, the timestep
    falling from 999, inside the denoiser's cache context where it has one (diffusers' cache hooks need it)."""
    import contextlib

    import torch

    run, rand = setup.run, Tensors(setup.device, setup.dtype)
    sync = torch.cuda.synchronize if setup.device.startswith("cuda") else (lambda: None)
    inputs = {b: run.bench.inputs(model.config, b, run.latent, run, rand) for b in set(run.passes)}
    context = getattr(model, "cache_context", None)
    seconds = []
    for i in range(steps + 1):
        t = 999.0 * (1 - i / (steps + 1))
        if pipe is not None:
            pipe.current_timestep = t
        sync()
        start = time.perf_counter()
        for n, batch in enumerate(run.passes):
            kwargs = inputs[batch]
            kwargs["timestep"].fill_(t)
            with context(f"pass{n}") if context else contextlib.nullcontext(), torch.no_grad():
                model(**kwargs, return_dict=False)
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(setup: Setup, kind: str, steps: int) -> dict:
    import torch

    cuda = setup.device.startswith("cuda")
    pipe, models = place(setup, kind)
    try:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        seconds = timed_steps(setup, models[0], steps, pipe)
        row = {"seconds_per_step": sum(seconds[1:]) / steps, "first_step": seconds[0]}
        if cuda:
            row["peak"] = torch.cuda.max_memory_allocated()
        if kind == "compile":
            row["note"] = f"first step (compiling) {seconds[0]:.1f} s"
        return row
    finally:
        pipe.remove_all_hooks()
        for model in models:
            if getattr(model, "is_cache_enabled", False):
                model.disable_cache()


def run_row(setup: Setup, kind: str, steps: int) -> dict:
    row = {"family": setup.run.bench.entry, "kind": kind}
    if kind in POLICIES and kind not in setup.plan["policies"]:
        return dict(row, note="not offered for this family (no fp8 storage)")
    if setup.smoke and kind == "sequential_offload":
        return dict(row, note="not run on the CPU: sequential offload needs an accelerator")
    why = refusal(kind, setup.device, family_of(setup))
    if why:
        return dict(row, note=why)
    try:
        row.update(measure(setup, kind, steps))
    except InvalidRequest as exc:  # Kinemo's own refusal once the model is built (first-block on one block)
        row["note"] = f"refused: {exc}"
    except Exception as exc:  # noqa: BLE001 - one row's failure must not lose the others
        from engine.backends.diffusers.placement import is_out_of_memory

        row["note"] = "does not fit in this GPU's memory" if is_out_of_memory(exc) else None
        if row["note"] is None:
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            row["note"] = "error: " + row["error"]
    finally:
        families.free(setup.device)
    return row


# -- the run ---------------------------------------------------------------------------------------------
def select(only: str | None) -> list[Bench]:
    """--only: catalog ids or a unique part of one (wan2.1, 5b, ltx, cogvideox), comma-separated."""
    if not only:
        return list(SUITE.values())
    found = []
    for name in only.split(","):
        matches = [b for entry, b in SUITE.items() if name in entry]
        if len(matches) != 1:
            raise SystemExit(f"--only {name!r} matches {[b.entry for b in matches] or 'nothing'}; ids: {list(SUITE)}")
        found += matches
    return found


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated families (catalog ids or parts): {', '.join(SUITE)}")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per row after a warm-up (%(default)s)")
    parser.add_argument("--frames", type=int, help="frame count for every family (default: each one's catalog frames)")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all rows (0: no limit; %(default)s)")
    parser.add_argument("--json", type=Path, help="write the rows here (rewritten as each row ends)")
    parser.add_argument("--cpu-smoke", action="store_true", help="shrunk configs on the CPU: checks the script only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    args = parse(argv)
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    from engine.backends.devices import pick_dtype

    device = "cpu" if args.cpu_smoke else "cuda"
    dtype = pick_dtype(device)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke: shrunk configs, nothing measured)"
    print(f"{name}; torch {torch.__version__}, {dtype}, {args.steps} steps per row, budget {args.budget:.0f} s")
    start, rows, plain_step = time.perf_counter(), [], {}
    with tempfile.TemporaryDirectory(prefix="kinemo-bench-gpu-") as tmp:
        setups = [
            Setup(families.prepare(b, args.frames, list(POLICIES), dtype, args.cpu_smoke, Path(tmp)), device, dtype,
                  args.cpu_smoke)
            for b in select(args.only)
        ]  # fmt: skip
    print(HEADER, flush=True)
    for kind in KINDS:  # kind by kind: every family gets its plain row, then Kinemo's, most telling first
        for setup in setups:
            family = setup.run.bench.entry
            cost = row_cost(kind, plain_step.get(family), args.steps)
            if not fits(time.perf_counter() - start, cost, args.budget):
                left = args.budget - (time.perf_counter() - start)
                row = {"family": family, "kind": kind, "note": f"skipped: needs ~{cost:.0f} s, {left:.0f} s left"}
            else:
                row = run_row(setup, kind, args.steps)
            if kind == "plain" and "seconds_per_step" in row:
                plain_step[family] = row["seconds_per_step"]
            rows.append(row)
            print(
                line(row, next((r for r in rows if r["family"] == family and r["kind"] == "plain"), None)), flush=True
            )
            if args.json:
                args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1, default=str))
    print(f"\nby family ({time.perf_counter() - start:.0f} s in all):\n{table(rows)}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
