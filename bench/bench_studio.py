"""Studio responsiveness: time to a visible window, and the longest UI-thread stall while generating.

    python bench/bench_studio.py                 # both measurements
    python bench/bench_studio.py launch --runs 5
    python bench/bench_studio.py stall --steps 10 [--thread-engine-too]

launch: runs `python -m app` (offscreen) with KINEMO_STUDIO_EXIT_AFTER_SHOW=1; the app prints when its
window got its first show event. Reported: seconds from process creation to that event (from /proc),
and from just before Popen (so including the interpreter's own start).

stall: in a fresh process (torch-free until the engine needs it), a 10 ms QTimer heartbeat runs
on the UI thread while the window generates 10 steps, twice in a row: "cold" (the engine process
starts, imports torch and loads the model) and "warm" (model cached). Reported: the largest gap between
heartbeats minus the 10 ms period, i.e. the longest the UI thread could not run. Done with a tiny random
model, with a random model of the starter's architecture (same load and step cost), and with
assets/kinemo-starter if its weights exist. --thread-engine-too repeats it with
KINEMO_ENGINE=thread (the backend in a QThread of the studio's own process) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red circle moves right on a black background"
HEARTBEAT_MS = 10


def _env(**extra) -> dict:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), **extra}


# -- launch ---------------------------------------------------------------------------------------
def measure_launch(runs: int) -> dict:
    since_start, since_popen = [], []
    with tempfile.TemporaryDirectory() as data:
        env = _env(KINEMO_STUDIO_EXIT_AFTER_SHOW="1", KINEMO_DATA_DIR=data)
        for _ in range(runs):
            before = time.time()
            result = subprocess.run(
                [sys.executable, "-m", "app"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
            )
            if result.returncode != 0:
                raise SystemExit(f"the studio failed to start:\n{result.stderr}")
            shown = json.loads(result.stdout.strip().splitlines()[-1])
            if shown["torch_loaded"]:
                raise SystemExit("torch was imported before the window appeared")
            since_popen.append(shown["shown_unix"] - before)
            if shown["since_process_start"] is not None:
                since_start.append(shown["since_process_start"])
    return {"runs": runs, "from_process_start_s": since_start, "from_popen_s": since_popen}


# -- stall ----------------------------------------------------------------------------------------
TINY_CONFIG = "dict(dim=16, depth=1, heads=2, text_dim=16, text_depth=1)"
STARTER_SHAPED_CONFIG = "dict()"  # the starter's architecture (KinemoConfig defaults), random weights


def make_model(folder: Path, config: str) -> None:
    """A random model folder, written by a separate process so the measuring process has not imported torch."""
    code = (
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from engine.kinemo.files import save_model\n"
        "from engine.kinemo.model import KinemoConfig, KinemoDiT\n"
        "torch.manual_seed(0)\n"
        f"m = KinemoDiT(KinemoConfig(**{config}))\n"
        "[torch.nn.init.normal_(p, std=0.05) for p in m.parameters()]\n"
        "save_model(m, Path(sys.argv[1]))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, env=_env(), cwd=ROOT)


def stall_case(model: str, steps: int) -> dict:
    """Runs inside a fresh process: two generations with a heartbeat on the UI thread."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    import app

    window = app.create_main_window()
    window.show()
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance()
    for _ in range(20):
        qapp.processEvents()
    form = window.form
    form.select_model(model)
    form.prompt_edit.setPlainText(PROMPT)
    form.steps_spin.setValue(steps)
    form.keep_seed_check.setChecked(True)

    clock = QElapsedTimer()
    clock.start()
    ticks: list[int] = []
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(lambda: ticks.append(clock.nsecsElapsed()))
    results = []
    for label in ("cold", "warm"):
        failures: list[str] = []
        window.queue.jobFailed.connect(lambda job, exc, f=failures: f.append(str(exc)))
        ticks.clear()
        heartbeat.start()
        started = time.perf_counter()
        loop = QEventLoop()
        window.queue.idle.connect(loop.quit)
        window.generate()
        loop.exec()  # the UI thread's event loop, as in the app, until the job is done
        window.queue.idle.disconnect(loop.quit)
        seconds = time.perf_counter() - started
        heartbeat.stop()
        if failures:
            raise SystemExit(f"generation failed: {failures[0]}")
        gaps = [(b - a) / 1e6 for a, b in zip(ticks, ticks[1:])]
        results.append(
            {
                "run": label,
                "seconds": round(seconds, 2),
                "heartbeats": len(ticks),
                "max_stall_ms": round(max(gaps) - HEARTBEAT_MS, 1),
                "max_gap_ms": round(max(gaps), 1),
                "gaps_over_50ms": sum(g > 50 for g in gaps),
                "p99_gap_ms": round(statistics.quantiles(gaps, n=100)[98], 1) if len(gaps) > 100 else None,
            }
        )
    window.close()
    return {"torch_in_ui_process": "torch" in sys.modules, "results": results}


def measure_stall(model: str, steps: int, engine: str) -> dict:
    with tempfile.TemporaryDirectory() as data:
        env = _env(KINEMO_DATA_DIR=data, KINEMO_ENGINE=engine)
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "_stall_case", model, str(steps)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=600,
        )
    if result.returncode != 0:
        raise SystemExit(f"stall case failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", nargs="?", default="all", choices=["all", "launch", "stall", "_stall_case"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--thread-engine-too", action="store_true")
    opts = parser.parse_args()
    if opts.what == "_stall_case":
        print(json.dumps(stall_case(opts.args[0], int(opts.args[1]))))
        return

    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    if opts.what in ("all", "launch"):
        launch = measure_launch(opts.runs)
        for key in ("from_process_start_s", "from_popen_s"):
            values = launch[key]
            if values:
                print(
                    f"launch -> first show ({key}, {len(values)} runs): median {statistics.median(values):.3f} s, "
                    f"min {min(values):.3f}, max {max(values):.3f}"
                )
    if opts.what in ("all", "stall"):
        engines = ["process", "thread"] if opts.thread_engine_too else ["process"]
        with tempfile.TemporaryDirectory() as models:
            tiny, shaped = Path(models) / "tiny-model", Path(models) / "starter-shaped"
            make_model(tiny, TINY_CONFIG)
            make_model(shaped, STARTER_SHAPED_CONFIG)
            cases = [("tiny", str(tiny)), ("starter-shaped", str(shaped))]
            if (ROOT / "assets" / "kinemo-starter" / "model.safetensors").is_file():
                cases.append(("kinemo-starter", "kinemo-starter"))
            else:
                print(
                    "(assets/kinemo-starter/model.safetensors not found: the trained starter model is skipped; "
                    "'starter-shaped' is its architecture with random weights, same load and step cost)"
                )
            for name, model in cases:
                for engine in engines:
                    measured = measure_stall(model, opts.steps, engine)
                    for r in measured["results"]:
                        print(
                            f"stall  {name:15} engine={engine:7} {r['run']}: {opts.steps} steps in {r['seconds']:.2f} s, "
                            f"longest UI-thread stall {r['max_stall_ms']:.1f} ms (max heartbeat gap {r['max_gap_ms']:.1f} ms, "
                            f"{r['gaps_over_50ms']} gaps > 50 ms, {r['heartbeats']} beats)"
                        )
                    print(f"       torch imported in the UI process: {measured['torch_in_ui_process']}")


if __name__ == "__main__":  # the engine process is spawned: this module must be import-safe
    main()
