"""The planner's VRAM estimate for each video family's denoiser against a forward pass measured on a CUDA GPU.

    python bench/bench_gpu_families.py [--only ID,...] [--frames N] [--policies none,...] [--repeats 2]
                                       [--budget SECONDS] [--json OUT] [--cpu-smoke]

Each denoiser is built from its family's real config (bench/gpu_family_configs.py, copied from diffusers'
conversion scripts) with random weights: constructed on the meta device, then each parameter is allocated on the
GPU in bf16 (fp32 where the class keeps it, as from_pretrained does) and filled with random numbers, so no model
passes through host RAM in fp32 and nothing is downloaded.

The estimate is the planner's own: the script writes the folder it reads (model_index.json, config.json files
and safetensors headers with no tensor data after them; engine.planning.headers reads only the header) and calls
read_pipeline and estimate_diffusers. The VAE folder has the VAE's real config (its compression) and no
tensors: only the denoiser runs here, so the figure compared is the estimate's denoising phase, the weights it
puts on the GPU + its activations x FRAGMENTATION (Estimate.vram is the largest of three phases).

Policies: Kinemo's ladder on a GPU as a lone denoiser sees it (none; group_offload; sequential_offload, with
fp8 storage where the class supports it) and "fp8" (all on the GPU, fp8 storage: fp8 on its own); model_offload
and vae_tiling place a lone denoiser as none does. Kinemo's apply_policy places the model(s) on a
DiffusionPipeline that holds nothing else, which then runs the forward passes the family's pipeline runs per
step at the catalog's default size, frames and guidance: max_memory_allocated/reserved (weights included,
reset after placing) and seconds per step (per batch size, the median of --repeats timed passes after a
warm-up, one pass after a warm-up over LONG_PASS seconds; synchronized; summed over the step's passes). Rows run policy by policy, cheapest family first, and
--json is rewritten as each ends, so a run cut short keeps its rows; --budget: start no row after N seconds.

--cpu-smoke runs the same code on the CPU in fp32 with every config shrunk (one layer, a few channels), 64x64
pixels and 9 frames: it checks the script; nothing is measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # run from anywhere, installed or not; the families live beside

from gpu_family_configs import BENCHES, SMOKE_FRAMES, SMOKE_SIZE, Bench, Tensors  # noqa: E402

from engine.backends.diffusers.placement import apply_policy, free_device_memory, is_out_of_memory  # noqa: E402
from engine.planning.estimate import FRAGMENTATION, Shape, compression, estimate_diffusers, supports_fp8  # noqa: E402
from engine.planning.headers import read_pipeline  # noqa: E402
from engine.planning.policies import BY_NAME, ladder  # noqa: E402
from engine.planning.system import free_ram  # noqa: E402
from engine.registry.catalog import catalog  # noqa: E402
from engine.registry.families import FAMILIES  # noqa: E402

GB = 2**30
POLICY_ORDER = ("none", "group_offload", "sequential_offload", "fp8")
LONG_PASS = 3.0  # seconds: a warm-up pass longer than this is followed by one timed pass only


@dataclass(frozen=True)
class Run:
    """One family at one size and frame count: what the planner and the forward passes see."""

    bench: Bench
    family: str
    frames: int
    width: int
    height: int
    fps: int
    guidance: float
    steps: int
    latent: tuple[int, int, int] = (0, 0, 0)  # latent frames, height, width (the VAE's compression)

    @property
    def passes(self) -> tuple[int, ...]:
        return self.bench.guided if self.guidance > 1.0 else (1,)

    @property
    def shape(self) -> Shape:
        return Shape(self.family, self.frames, self.width, self.height, self.guidance, self.steps)


def make_run(bench: Bench, frames: int | None, smoke: bool) -> Run:
    e = catalog()[bench.entry]
    step = FAMILIES[e.family].frame_step
    frames = frames or (SMOKE_FRAMES if smoke else e.frames)
    frames = (frames - 1) // step * step + 1  # the family's frame rule (4k+1, 8k+1)
    width, height = (SMOKE_SIZE, SMOKE_SIZE) if smoke else (e.width, e.height)
    return Run(bench, e.family, frames, width, height, e.fps, e.guidance, e.steps)


# -- building a denoiser without its weights -------------------------------------------------------------
def meta_models(bench: Bench, smoke: bool) -> list:
    """The denoiser(s), parameters on the meta device; buffers stay real (rope tables computed in __init__)."""
    import diffusers
    from accelerate import init_empty_weights

    cls = getattr(diffusers, bench.cls)
    with init_empty_weights():
        return [cls(**{**bench.config, **(bench.tiny if smoke else {})}) for _ in range(bench.experts)]


def keeps_fp32(model, name: str) -> bool:
    """diffusers' rule when it loads in a lower precision (load_model_dict_into_meta)."""
    return any(k in name.split(".") for k in getattr(model, "_keep_in_fp32_modules", None) or ())


def materialise(model, device: str, dtype):
    """Every parameter allocated on the device in the run dtype and filled with small random numbers."""
    import torch

    for prefix, module in model.named_modules():
        for name, param in list(module.named_parameters(recurse=False)):
            full = f"{prefix}.{name}" if prefix else name
            tensor = torch.empty(param.shape, dtype=torch.float32 if keeps_fp32(model, full) else dtype, device=device)
            if param.dim() == 1 and name.endswith("weight"):  # norm scales at 1 keep activations finite
                tensor.fill_(1.0)
            else:
                tensor.normal_(0.0, 0.02)
            module._parameters[name] = torch.nn.Parameter(tensor, requires_grad=False)
        for name, buffer in list(module.named_buffers(recurse=False)):
            module._buffers[name] = buffer.to(device)
    return model.eval()


# -- the planner's estimate, from the headers it reads ---------------------------------------------------
def write_header(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> None:
    """A safetensors header (name -> dtype, shape, byte offsets) and no tensor data: the planner reads no further."""
    header, offset = {}, 0
    for name, (dtype, shape, size) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    data = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(data) + (-len(data) % 8)) + data + b" " * (-len(data) % 8))


def stored_tensors(model, dtype) -> dict[str, tuple[str, list[int], int]]:
    """What from_pretrained would hold: name -> (safetensors dtype, shape, bytes) in the run dtype."""
    import torch

    names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}
    found = {}
    for name, t in model.state_dict().items():
        kind = (torch.float32 if keeps_fp32(model, name) else dtype) if t.is_floating_point() else t.dtype
        found[name] = (names.get(kind, "F32"), list(t.shape), t.numel() * kind.itemsize)
    return found


def write_folder(folder: Path, run: Run, models: list, dtype) -> dict:
    """The diffusers folder the planner reads (engine.planning.headers.read_pipeline), without weights."""
    import diffusers
    import torch

    names = ["transformer", "transformer_2"][: len(models)]
    vae_class, vae_config = run.bench.vae
    index = {"_class_name": FAMILIES[run.family].t2v_class, "vae": ["diffusers", vae_class]}
    index.update({name: ["diffusers", run.bench.cls] for name in names})
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    for name, model in zip(names, models):
        model.save_config(folder / name)
        write_header(folder / name / "diffusion_pytorch_model.safetensors", stored_tensors(model, dtype))
    with torch.device("meta"):  # its real config (compression), no tensors: no VAE runs here
        getattr(diffusers, vae_class)(**vae_config).save_config(folder / "vae")
    write_header(folder / "vae" / "diffusion_pytorch_model.safetensors", {})
    return read_pipeline(folder)


def lone_policies(components: dict, wanted: list[str]) -> list:
    """Kinemo's ladder on a GPU, less what places a lone denoiser as none does, + fp8 storage on its own."""
    fp8 = supports_fp8(components)
    found = [p for p in ladder(True, fp8, tiling=False) if p.placement in ("device", "group", "sequential")]
    if fp8:
        found.append(replace(BY_NAME["none"], name="fp8", label="fp8 weights, all on the GPU", fp8=True))
    return [p for p in found if p.name in wanted]


def denoise_estimate(components: dict, run: Run, policy, size: int) -> dict:
    """The planner's denoising phase: the weights it puts on the GPU + its activations x FRAGMENTATION."""
    e = estimate_diffusers(components, run.shape, policy, True, 0, size)
    weights, act = e.parts["vram_weights"], e.parts["denoise"]
    return {"estimate": int(weights + act * FRAGMENTATION), "est_weights": weights, "est_activations": act}


# -- placing and measuring -------------------------------------------------------------------------------
def lone_pipeline(models: list):
    from diffusers import DiffusionPipeline

    class LonePipeline(DiffusionPipeline):
        """The denoiser(s) alone, so that apply_policy places them as it places a whole pipeline."""

        model_cpu_offload_seq = "transformer->transformer_2"

        def __init__(self, transformer, transformer_2=None):
            super().__init__()
            self.register_modules(transformer=transformer, transformer_2=transformer_2)

    return LonePipeline(*models)


def forward_seconds(run: Run, model, rand: Tensors, repeats: int) -> dict[int, float]:
    """Seconds of one forward pass at each batch size the step uses: the median of `repeats` timed passes after a
    warm-up (kernels, cuBLAS workspaces, offload hooks), or of one where the warm-up took over LONG_PASS seconds:
    passes that long vary little, and the time is better spent on the other rows."""
    import torch

    sync = torch.cuda.synchronize if rand.device.startswith("cuda") else (lambda: None)

    def timed(kwargs) -> float:
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            model(**kwargs, return_dict=False)
        sync()
        return time.perf_counter() - start

    seconds = {}
    for batch in sorted(set(run.passes), reverse=True):  # the largest first: it makes the peak
        kwargs = run.bench.inputs(model.config, batch, run.latent, run, rand)
        warm = timed(kwargs)
        seconds[batch] = statistics.median(timed(kwargs) for _ in range(repeats if warm <= LONG_PASS else 1))
        del kwargs
    return seconds


def measure(run: Run, policy, device: str, dtype, repeats: int, smoke: bool) -> dict:
    import torch

    cuda = device.startswith("cuda")
    models = [materialise(m, device, dtype) for m in meta_models(run.bench, smoke)]
    pipe = lone_pipeline(models)
    try:
        if policy.offloads and cuda:  # apply_policy places a pipeline loaded on the CPU
            pipe.to("cpu")
            free_device_memory(device)
        apply_policy(pipe, policy, device, dtype)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        row = {"resident": torch.cuda.memory_allocated() if cuda else None}
        row["forward_seconds"] = forward_seconds(run, models[0], Tensors(device, dtype), repeats)
        row["seconds_per_step"] = sum(row["forward_seconds"][b] for b in run.passes)
        if cuda:
            row.update(peak=torch.cuda.max_memory_allocated(), reserved=torch.cuda.max_memory_reserved())
        return row
    finally:
        pipe.remove_all_hooks()


def host_need(metas: list, policy, cuda: bool, dtype) -> int:
    """Host RAM a row needs: none where the model is built on the GPU; offloading copies it to the CPU, and group
    offload's streams pin a second copy, tensor by tensor, each rounded up to a power of two by torch's pinned
    allocator."""
    if not (cuda and policy.offloads):
        return 0
    sizes = [size for m in metas for _, _, size in stored_tensors(m, dtype).values() if size]
    pinned = sum(1 << (s - 1).bit_length() for s in sizes) if policy.placement == "group" else 0
    return sum(sizes) + pinned


def free(device: str) -> None:
    import torch

    free_device_memory(device)
    if device.startswith("cuda") and hasattr(torch._C, "_host_emptyCache"):
        torch._C._host_emptyCache()  # pinned blocks stay cached in the process otherwise


def run_row(plan: dict, policy, device: str, dtype, repeats: int, smoke: bool) -> dict:
    run = plan["run"]
    row = dict(family=run.bench.entry, policy=policy.name, label=policy.label, **plan["estimates"][policy.name])
    row.update(frames=run.frames, width=run.width, height=run.height, passes=list(run.passes), latent=list(run.latent))
    if smoke and policy.placement == "sequential":  # accelerate refuses the CPU as the execution device
        return dict(row, note="not run on the CPU: sequential offload needs an accelerator")
    need, ram = host_need(plan["metas"], policy, device.startswith("cuda"), dtype), free_ram()
    if need and ram is not None and need + 4 * GB > ram:
        row["note"] = f"skipped: needs ~{need / GB:.0f} GB of host RAM, {ram / GB:.0f} GB free"
        return row
    try:
        row.update(measure(run, policy, device, dtype, repeats, smoke))
    except Exception as exc:  # noqa: BLE001 - one family's failure must not lose the others' rows
        if is_out_of_memory(exc):
            row["note"] = f"does not fit (estimate {row['estimate'] / GB:.1f} GB)"
        else:
            import traceback

            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    finally:
        free(device)  # collects the row's models (free_device_memory runs gc) and hands the memory back
    return row


# -- the run ---------------------------------------------------------------------------------------------
def prepare(bench: Bench, frames: int | None, wanted: list[str], dtype, smoke: bool, tmp: Path) -> dict:
    """A family's run, its policies and the planner's estimate under each (from headers, nothing allocated)."""
    run = make_run(bench, frames, smoke)
    metas = meta_models(bench, smoke)
    components = write_folder(tmp / bench.entry, run, metas, dtype)
    temporal, spatial = compression(run.family, components.get("vae"))
    run = replace(run, latent=((run.frames - 1) // temporal + 1, run.height // spatial, run.width // spatial))
    policies = lone_policies(components, wanted)
    size = dtype.itemsize
    estimates = {p.name: denoise_estimate(components, run, p, size) for p in policies}
    return {"run": run, "metas": metas, "policies": {p.name: p for p in policies}, "estimates": estimates}


def size(n: int | None) -> str:
    return "-" if n is None else f"{n / GB:.2f} GB" if n >= GB else f"{n / 2**20:.1f} MB"


HEADER = f"{'family':<26} {'policy':<18} {'estimate':>9} {'resident':>9} {'peak':>9} {'reserved':>9} {'ratio':>6} {'s/step':>7}"


def line(row: dict) -> str:
    """One table row; ratio is the reserved peak (what the process takes from the GPU) over the estimate."""
    head = f"{row['family']:<26} {row['policy']:<18}"
    if "note" in row or "error" in row:
        return f"{head} {row.get('note') or 'error: ' + row['error']}"
    ratio = f"{row['reserved'] / row['estimate']:.2f}" if row.get("reserved") else "-"
    cells = [size(row.get(k)) for k in ("estimate", "resident", "peak", "reserved")]
    return f"{head} {cells[0]:>9} {cells[1]:>9} {cells[2]:>9} {cells[3]:>9} {ratio:>6} {row['seconds_per_step']:>7.2f}"


def select(only: str | None) -> list[Bench]:
    """--only: catalog ids or any unique part of one (wan2.1-t2v-14b, 14b, ltx), comma-separated."""
    if not only:
        return list(BENCHES.values())
    found = []
    for name in only.split(","):
        matches = [b for entry, b in BENCHES.items() if name == entry or name in entry]
        exact = [b for b in matches if b.entry == name]
        if len(exact or matches) != 1:
            raise SystemExit(f"--only {name!r} matches {[b.entry for b in matches] or 'nothing'}; ids: {list(BENCHES)}")
        found += exact or matches
    return found


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated families (catalog ids or parts): {', '.join(BENCHES)}")
    parser.add_argument("--frames", type=int, help="frame count for every family (rounded down to its 4k+1/8k+1)")
    parser.add_argument("--policies", default=",".join(POLICY_ORDER), help="comma-separated: %(default)s")
    parser.add_argument("--repeats", type=int, help="timed passes per batch size after a warm-up (2; smoke 1)")
    parser.add_argument("--budget", type=float, default=0, help="start no row after this many seconds (0: no limit)")
    parser.add_argument("--json", type=Path, help="write the rows here (rewritten as each row ends)")
    parser.add_argument("--cpu-smoke", action="store_true", help="shrunk configs on the CPU: checks the script only")
    args = parser.parse_args(argv)
    if set(args.policies.split(",")) - set(POLICY_ORDER):
        parser.error(f"--policies: choose among {', '.join(POLICY_ORDER)}")
    return args


def main(argv: list[str] | None = None) -> int:
    import diffusers
    import torch

    from engine.backends.devices import pick_dtype

    args = parse(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("needs a CUDA GPU (or --cpu-smoke)", file=sys.stderr)
        return 2
    device = "cpu" if args.cpu_smoke else "cuda"
    dtype = pick_dtype(device)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke: shrunk configs, nothing measured)"
    report = {"device": name, "torch": torch.__version__, "diffusers": diffusers.__version__, "rows": []}
    print(f"{name}; torch {torch.__version__}, diffusers {diffusers.__version__}, {dtype}", flush=True)
    repeats = args.repeats or (1 if args.cpu_smoke else 2)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kinemo-gpu-families-") as tmp:
        plans = [
            prepare(b, args.frames, args.policies.split(","), dtype, args.cpu_smoke, Path(tmp))
            for b in select(args.only)
        ]
    print(HEADER, flush=True)
    for policy_name in POLICY_ORDER:  # policy by policy: every family gets its lightest row first
        for plan in plans:
            policy = plan["policies"].get(policy_name)
            if policy is None:
                continue
            if args.budget and time.perf_counter() - start > args.budget:
                row = dict(family=plan["run"].bench.entry, policy=policy_name, note="skipped: --budget spent")
            else:
                row = run_row(plan, policy, device, dtype, repeats, args.cpu_smoke)
            row["elapsed"] = round(time.perf_counter() - start, 1)
            report["rows"].append(row)
            print(line(row), flush=True)
            if args.json:
                args.json.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nby family ({time.perf_counter() - start:.0f} s in all):\n{HEADER}")
    order = {b: i for i, b in enumerate(BENCHES)}
    for row in sorted(report["rows"], key=lambda r: (order[r["family"]], POLICY_ORDER.index(r["policy"]))):
        print(line(row))
    return 1 if any("error" in r for r in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
