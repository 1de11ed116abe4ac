"""The memory planner's estimate against the measured peak, each case in its own process.

    python bench/bench_memory_plan.py [--only NAME,...] [--calibrate] [--json OUT]

Every case runs `kinemo generate` (app.cli.main, in a fresh Python process, frames written as PNG) and
compares the plan's RAM estimate (printed by the CLI before the run, kept in --stats) with the process's
peak resident memory (ru_maxrss, in --stats). Cases: the bundled model at 16 and 128 frames (and more),
and the tiny random-weight diffusers pipelines of tests/tiny_diffusers at a few sizes and frame counts.

These are CPU runs, where the estimate is for RAM. A Python process that has imported torch and a
diffusers pipeline already holds ~430 MB before any weight is read (~220 MB for the bundled model), and
the tiny models' weights are 0.3-14 MB, so the total is dominated by that baseline. The planner
measures the baseline at run time (it is not a constant), and the table shows it, the total and the part
above the baseline (weights + activations + output) separately, each with its ratio to the measurement.

--calibrate also records, in each process, the peak RSS of each phase (load, denoise, decode) with a
sampling thread, fits the CPU constants (engine.registry.families.MemoryCalibration) to the cases marked "fit" and prints them.
Cases not marked "fit" are sizes and frame counts the fit never saw.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red circle moves right on a black background"
MB = 2**20


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # "kinemo-starter" or a tiny_diffusers case name (tests/tiny_diffusers/cases.py)
    size: int
    frames: int
    guidance: float = 2.0
    memory: str = "auto"
    steps: int = 2
    fit: bool = False  # used by --calibrate to fit the constants
    flags: tuple[str, ...] = ()  # run options: --quantize int8, --onnx-temporal

    @property
    def family(self) -> str:
        """The engine family (engine.registry.families) of the model: the tiny case's, so "wan22-a14b-t2v" is "wan"."""
        if self.model == "kinemo-starter":
            return "kinemo"
        return next(c.family for c in _tiny_cases() if c.name == self.model)


def _tiny_cases():
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from tiny_diffusers.cases import CASES as TINY

    return TINY


CASES = [
    Case("kinemo 16f", "kinemo-starter", 64, 16, guidance=1.0, steps=25, fit=True),
    Case("kinemo 16f cfg", "kinemo-starter", 64, 16, guidance=4.0, steps=25, fit=True),
    Case("kinemo 48f", "kinemo-starter", 64, 48, guidance=1.0, steps=25, fit=True),
    Case("kinemo 128f cfg", "kinemo-starter", 64, 128, guidance=4.0, steps=25, fit=True),
    Case("kinemo 128f", "kinemo-starter", 64, 128, guidance=1.0, steps=25),
    Case("kinemo 16f int8", "kinemo-starter", 64, 16, guidance=1.0, steps=25, flags=("--quantize", "int8")),
    Case("kinemo 16f onnx", "kinemo-starter", 64, 16, guidance=1.0, steps=25, flags=("--onnx-temporal",)),
    Case("kinemo 128f int8+onnx", "kinemo-starter", 64, 128, steps=25, flags=("--quantize", "int8", "--onnx-temporal")),
    Case("animatediff 128x16", "animatediff", 128, 16, fit=True),
    Case("animatediff 256x16", "animatediff", 256, 16, fit=True),
    Case("animatediff 192x24", "animatediff", 192, 24),
    Case("animatediff 256x16 low", "animatediff", 256, 16, memory="low"),
    Case("svd 128x14", "svd", 128, 14, fit=True),
    Case("svd 256x14", "svd", 256, 14, fit=True),
    Case("svd 192x10", "svd", 192, 10),
    Case("wan 128x17", "wan-t2v", 128, 17, fit=True),
    Case("wan 256x17", "wan-t2v", 256, 17, fit=True),
    Case("wan 192x25", "wan-t2v", 192, 25),
    # Wan 2.2 (TI2V 5B: its own VAE, 32 pixels a token; A14B: two experts), checked against the constants fitted on 2.1
    Case("wan22 ti2v 128x17", "wan22-ti2v-t2v", 128, 17),
    Case("wan22 ti2v 256x17", "wan22-ti2v-t2v", 256, 17),
    Case("wan22 ti2v i2v 192x25", "wan22-ti2v-i2v", 192, 25),
    Case("wan22 a14b 128x17", "wan22-a14b-t2v", 128, 17),
    Case("wan22 a14b 256x17", "wan22-a14b-t2v", 256, 17),
    Case("wan22 a14b i2v 192x25", "wan22-a14b-i2v", 192, 25),
    Case("ltx 128x17", "ltx-t2v", 128, 17, fit=True),
    Case("ltx 256x17", "ltx-t2v", 256, 17, fit=True),
    Case("ltx 192x25", "ltx-t2v", 192, 25),
    Case("cogvideox 128x17", "cogvideox-t2v", 128, 17, fit=True),
    Case("cogvideox 256x17", "cogvideox-t2v", 256, 17, fit=True),
    Case("cogvideox 192x25", "cogvideox-t2v", 192, 25),
    Case("ltx2 128x17", "ltx2-t2v", 128, 17, fit=True),
    Case("ltx2 256x17", "ltx2-t2v", 256, 17, fit=True),
    Case("ltx2 192x25", "ltx2-t2v", 192, 25),
    Case("ltx2 i2v 160x33", "ltx2-i2v", 160, 33),
    Case("hunyuan15 128x17", "hunyuan15-t2v", 128, 17, fit=True),
    Case("hunyuan15 256x17", "hunyuan15-t2v", 256, 17, fit=True),
    Case("hunyuan15 192x25", "hunyuan15-t2v", 192, 25),
    Case("hunyuan15 i2v 48x33", "hunyuan15-i2v", 48, 33),  # the i2v pipeline makes ~48x48 (its target_size)
    Case("sana-video 128x17", "sana-video-t2v", 128, 17, fit=True),
    Case("sana-video 256x17", "sana-video-t2v", 256, 17, fit=True),
    Case("sana-video 192x25", "sana-video-t2v", 192, 25),
    Case("sana-video i2v 160x33", "sana-video-i2v", 160, 33),
    Case("skyreels-v2 128x17", "skyreels-v2-t2v", 128, 17, fit=True),
    Case("skyreels-v2 256x17", "skyreels-v2-t2v", 256, 17, fit=True),
    Case("skyreels-v2 192x25", "skyreels-v2-t2v", 192, 25),
    Case("skyreels-v2 i2v 160x33", "skyreels-v2-i2v", 160, 33),
    Case("kandinsky5 128x17", "kandinsky5-t2v", 128, 17, fit=True),
    Case("kandinsky5 256x17", "kandinsky5-t2v", 256, 17, fit=True),
    Case("kandinsky5 192x25", "kandinsky5-t2v", 192, 25),
    Case("kandinsky5 i2v 160x33", "kandinsky5-i2v", 160, 33),
]


# -- the child: one run, measured ---------------------------------------------------------------------
def child(spec: dict) -> None:
    import resource
    import threading

    import psutil

    process = psutil.Process()
    phase, peaks, marks, done = ["start"], {}, {}, threading.Event()

    def sample():
        while not done.is_set():
            rss = process.memory_info().rss
            peaks[phase[0]] = max(peaks.get(phase[0], 0), rss)
            time.sleep(0.002)

    from app import cli
    from engine.backends.bundled import BundledBackend
    from engine.backends.diffusers.backend import DiffusersBackend

    def patch_load(cls):
        original = cls.load

        def load(self, *args, **kwargs):
            phase[0] = "load"
            try:
                return original(self, *args, **kwargs)
            finally:
                marks.setdefault("loaded", process.memory_info().rss)
                phase[0] = "denoise"

        cls.load = load

    patch_load(BundledBackend)
    patch_load(DiffusersBackend)
    run_pipeline = DiffusersBackend._run

    def _run(self, *args, **kwargs):
        vae = self.pipe.vae
        decode = vae.decode

        def phased_decode(*a, **k):
            phase[0] = "decode"
            return decode(*a, **k)

        vae.decode = phased_decode
        try:
            return (yield from run_pipeline(self, *args, **kwargs))
        finally:
            vae.decode = decode

    DiffusersBackend._run = _run
    threading.Thread(target=sample, daemon=True).start()
    stats = Path(spec["workdir"]) / "stats.json"
    argv = [
        "generate",
        PROMPT,
        "-o",
        str(Path(spec["workdir"]) / "frames"),
        "--format",
        "png",
        "--model",
        spec["folder"],
        "--steps",
        str(spec["steps"]),
        "--frames",
        str(spec["frames"]),
        "--width",
        str(spec["size"]),
        "--height",
        str(spec["size"]),
        "--guidance",
        str(spec["guidance"]),
        "--memory",
        spec["memory"],
        "--stats",
        str(stats),
    ]
    if spec.get("image"):
        argv += ["--image", spec["image"]]
    argv += list(spec.get("flags", ()))
    code = cli.main(argv)
    done.set()
    if code != 0:
        raise SystemExit(code)
    result = json.loads(stats.read_text())
    result["phases_mb"] = {k: v / MB for k, v in peaks.items()}
    result["loaded_mb"] = marks.get("loaded", 0) / MB
    result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# -- the parent -------------------------------------------------------------------------------------------
def build_folder(case: Case, cache: Path) -> tuple[str, bool]:
    """The model to pass to --model, and whether it animates a picture."""
    if case.model == "kinemo-starter":
        return case.model, False
    tiny = next(c for c in _tiny_cases() if c.name == case.model)
    folder = cache / case.model
    if not (folder / "model_index.json").is_file():
        tiny.build(folder)
    return str(folder), tiny.image_to_video


def run_case(case: Case, folder: str, workdir: Path, image: bool = False) -> dict:
    spec = dict(asdict(case), folder=folder, workdir=str(workdir))
    if image:
        from tiny_diffusers.direct import gradient_picture

        spec["image"] = str(gradient_picture(workdir / "first.png", case.size, case.size))
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, cwd=ROOT
    )
    line = next((s for s in out.stdout.splitlines() if s.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{case.name} failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
    plan_line = next((s for s in out.stderr.splitlines() if s.startswith("memory:")), "")
    return dict(json.loads(line[len("RESULT ") :]), plan=plan_line)


def report(rows: list[tuple[Case, dict]]) -> None:
    print(
        f"{'case':24} {'fit':>3} {'policy':>11} {'base MB':>8} {'est MB':>8} {'peak MB':>8} {'ratio':>6}"
        f" {'est+ MB':>8} {'meas+ MB':>8} {'ratio+':>7}"
    )
    worst = 0.0
    for case, r in rows:
        base, est, peak = r["memory_baseline_mb"], r["memory_estimate_ram_mb"], r["peak_memory_mb"]
        ratio, extra_ratio = est / peak, (est - base) / max(peak - base, 1e-9)
        worst = max(worst, abs(ratio - 1))
        print(
            f"{case.name:24} {'yes' if case.fit else 'no':>3} {r.get('memory_policy', '?'):>11} {base:8.1f} {est:8.1f}"
            f" {peak:8.1f} {ratio:6.2f} {est - base:8.1f} {peak - base:8.1f} {extra_ratio:7.2f}"
        )
    print(f"largest deviation of the total: {worst * 100:.1f} % (the condition: within 25 %)")
    print(
        "base = the process when the plan is made (torch + pipeline modules imported), measured at run time;\n"
        "est+/meas+ = the part above it: load overhead + weights + activations + output"
    )


def calibrate(rows: list[tuple[Case, dict]]) -> None:
    """Least-squares fits of the CPU constants (engine.registry.families.MemoryCalibration) to the phase peaks of the "fit" cases."""
    import numpy as np

    from engine.planning import bundled_estimate, estimate, headers

    by_family: dict[str, list] = {}
    overheads = []
    for case, r in rows:
        if case.fit:
            by_family.setdefault(case.family, []).append((case, r))
    print("\ncalibration (MB; fitted on the 'fit' cases):")
    for family, items in by_family.items():
        if family == "kinemo":
            from engine.registry.assets import STARTER_DIR

            short, long = [], []
            for case, r in items:
                shape = estimate.Shape("kinemo", case.frames, case.size, case.size, case.guidance, case.steps)
                parts = bundled_estimate.estimate_bundled(STARTER_DIR, shape, 0).parts
                unit = (parts["denoise"] - bundled_estimate.BUNDLED_FIXED) / bundled_estimate.BUNDLED_K / MB
                run = r["peak_memory_mb"] - r["loaded_mb"] - parts["output"] / MB
                (long if parts["cache"] else short).append((unit, run, parts["cache"] / MB))
            fixed, k = _fit([u for u, _, _ in short], [y for _, y, _ in short])
            factors = [(y - fixed - k * u) / c for u, y, c in long]
            print(
                f"  kinemo: BUNDLED_FIXED={fixed:.1f} MB, BUNDLED_K={k:.1f}, BUNDLED_CACHE_RSS="
                f"{np.mean(factors) if factors else float('nan'):.2f} (each: {np.round(factors, 2).tolist()}),"
                f" load {np.mean([r['loaded_mb'] - r['memory_baseline_mb'] for _, r in items]):.1f} MB with the weights"
            )
            continue
        den_x, den_y, dec_x, dec_y = [], [], [], []
        for case, r in items:
            comps = headers.read_pipeline(r["folder"])
            shape = estimate.Shape(family, case.frames, case.size, case.size, case.guidance, case.steps)
            loaded = r["loaded_mb"]
            overheads.append(loaded - r["memory_baseline_mb"] - sum(c.bytes_at(4) for c in comps.values()) / MB)
            phases = r["phases_mb"]
            den_x.append(estimate.denoise_unit(shape, comps, 4) / MB)
            masks = estimate.attention_mask_bytes(shape, comps, 4) / MB  # not fitted: bytes the masks take
            den_y.append(max(phases.get("denoise", loaded), loaded) - loaded - masks)
            vae = estimate.vae_of(comps)
            dec_x.append(4 * estimate.decode_pixels(shape, vae, False) / MB)
            out = estimate.OUTPUT_COPIES * case.frames * case.size * case.size * 3 * 4 / MB
            dec_y.append(
                phases.get("decode", loaded) - loaded - out - estimate.vae_mask_bytes(shape, vae, False, 4) / MB
            )
        den_fixed, den_k = _fit(den_x, den_y)
        dec_fixed, floats = _fit(dec_x, dec_y)
        vae = estimate.vae_of(headers.read_pipeline(items[0][1]["folder"]))
        channels = estimate.vae_channels(vae)
        live = estimate.K_LIVE.get(vae.class_name, estimate.K_LIVE_DEFAULT)
        print(
            f"  {family}: den_fixed={den_fixed:.0f} den_k={den_k:.1f} dec_fixed={dec_fixed:.0f} "
            f"floats/px={floats:.1f} -> k_px={max(floats - live * channels, 0):.1f} (K_LIVE {live} x {channels:g} ch)"
            f"  [den {np.round(den_y, 1).tolist()} dec {np.round(dec_y, 1).tolist()}]"
        )
        # a transformer's tiny activations do not show (den_k is chosen, 12); a fitted slope below K_LIVE x channels
        # leaves k_px at 0: the fixed parts for those
        den_12 = np.mean(np.asarray(den_y) - 12.0 * np.asarray(den_x))
        dec_0 = np.mean(np.asarray(dec_y) - live * channels * np.asarray(dec_x))
        print(f"    with den_k=12: den_fixed={den_12:.0f}; with k_px=0: dec_fixed={dec_0:.0f}")
    if overheads:
        print(f"  LOAD_OVERHEAD: {np.mean(overheads):.1f} MB (range {min(overheads):.1f}-{max(overheads):.1f})")


def _starter():
    from engine.registry.assets import STARTER_DIR

    return STARTER_DIR


def _fit(xs, ys) -> tuple[float, float]:
    """y = a + b x by least squares (b = 0 when the x do not vary)."""
    import numpy as np

    x, y = np.asarray(xs, float), np.asarray(ys, float)
    if len(x) < 2 or np.ptp(x) < 1e-3 * max(abs(x).max(), 1e-9):
        return float(y.mean()), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--only", help="comma-separated case names (default: all)")
    p.add_argument("--skip", help="comma-separated case names to leave out")
    p.add_argument("--calibrate", action="store_true", help="fit the CPU constants to the 'fit' cases and print them")
    p.add_argument("--json", type=Path, help="also write every measurement as JSON")
    opts = p.parse_args()
    if opts.child:
        child(json.loads(opts.child))
        return
    cases = CASES
    if opts.only:
        names = {n.strip() for n in opts.only.split(",")}
        cases = [c for c in CASES if c.name in names]
    if opts.skip:
        skipped = {n.strip() for n in opts.skip.split(",")}
        cases = [c for c in cases if c.name not in skipped]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "models"
        for number, case in enumerate(cases):
            folder, image = build_folder(case, cache)
            workdir = Path(tmp) / f"run{number}"
            workdir.mkdir()
            started = time.perf_counter()
            try:
                result = run_case(case, folder, workdir, image)
            except RuntimeError as exc:
                print(f"  {exc}", file=sys.stderr, flush=True)
                continue
            result["folder"] = folder
            print(
                f"  {case.name}: {result['plan']}  [{time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True
            )
            rows.append((case, result))
        report(rows)
        if opts.calibrate:
            calibrate(rows)
    if opts.json:
        opts.json.write_text(json.dumps([dict(case=asdict(c), **r) for c, r in rows], indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    main()
