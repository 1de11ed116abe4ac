"""The latency `kinemo serve` adds to a job: the same small job through HTTP and directly, side by side.

    http     submit (POST /v1/jobs: the body parsed, the model's defaults filled, the request checked), follow the
             job's event stream (progress, previews as PNG strips) to its end, download the result (GET .../result);
             the server runs in this process on a loopback port (app.serve.serve_cli.ServerThread)
    worker   the http job's own time on the server, from the worker taking it up to its final state
    direct   app.jobs.render.render_clip with a kept backend into a file: what the server's worker does per job

Both sides keep their backend loaded (a warm-up job each first) and run the same request with the same export
settings; the runs alternate (http, direct, direct, http, ...) so a busy machine slows both alike. The figure is
the difference of the medians per job (http - direct), and, less exposed to a busy machine, the median of each http
job's time less its own time on the server (submit, queueing, the stream's last event, the download). The bundled
model at 64x64 keeps the job short, so the overhead shows.

    python bench/bench_serve.py [--runs 8] [--steps 10] [--size 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROMPT = "a red circle moves right on a black background"


def http_job(client, job: dict, out: Path) -> tuple[float, float]:
    """(seconds from submit to the file downloaded, seconds the server's worker spent on the job)."""
    started = time.perf_counter()
    submitted = client.submit(job)
    events = list(client.events(submitted["id"]))  # to the final state
    final, summary = events[-1]
    if final != "done":
        raise RuntimeError(f"the job ended {final}: {summary.get('error')}")
    client.result(submitted["id"], out)
    return time.perf_counter() - started, summary["ended"] - summary["started"]


def direct_job(backend, request, settings, out: Path) -> float:
    from app.jobs.render import render_clip

    started = time.perf_counter()
    render_clip(backend, request, out, settings, on_event=lambda event: None)
    return time.perf_counter() - started


def measure(runs: int, steps: int, size: int, work: Path) -> dict:
    from app.serve.serve_cli import ServerThread
    from engine.api.request import GenerationRequest
    from engine.api.run_options import RunOptions
    from engine.backends.base import open_backend
    from export import ExportSettings

    options = RunOptions(device="cpu")
    job = {"prompt": PROMPT, "width": size, "height": size, "steps": steps, "seed": 1}
    backend = open_backend("kinemo-starter", options)
    request = GenerationRequest(**{**backend.defaults(), **job}).validate()
    settings = ExportSettings("mp4", request.fps, request.width, request.height, 80).validate()
    times: dict = {"http": [], "direct": [], "worker": []}
    with ServerThread(options, work / "server") as served:
        client = served.client()
        http_job(client, job, work / "warm-http.mp4")  # both sides load their model once
        direct_job(backend, request, settings, work / "warm-direct.mp4")
        for run in range(runs):
            order = ("http", "direct") if run % 2 == 0 else ("direct", "http")
            for side in order:
                out = work / f"{side}-{run}.mp4"
                if side == "http":
                    seconds, worker = http_job(client, job, out)
                    times["worker"].append(worker)
                else:
                    seconds = direct_job(backend, request, settings, out)
                times[side].append(seconds)
            client.cancel(client.jobs()[-1]["id"])  # finished jobs are forgotten: the server's folder stays small
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as work:
        times = measure(args.runs, args.steps, args.size, Path(work))
    print(f"the bundled model, {args.size}x{args.size}, 16 frames, {args.steps} steps, MP4; {args.runs} jobs per side")
    print(f"{'side':8} {'median s':>9} {'mean s':>8} {'min s':>7} {'max s':>7}")
    for side, values in times.items():
        print(
            f"{side:8} {statistics.median(values):9.3f} {statistics.mean(values):8.3f} "
            f"{min(values):7.3f} {max(values):7.3f}"
        )
    added = statistics.median(times["http"]) - statistics.median(times["direct"])
    share = added / statistics.median(times["direct"]) * 100
    print(f"added by the server per job: {added * 1000:+.0f} ms (median http - median direct, {share:+.1f} %)")
    paired = statistics.median(h - w for h, w in zip(times["http"], times["worker"]))
    print(f"outside the worker per job: {paired * 1000:.0f} ms (median of http - the job's own time on the server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
