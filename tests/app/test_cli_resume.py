"""`kinemo generate … --resume`: a long clip killed mid-run (kill -9, Ctrl+C) continues from its last finished
window when the same command runs again, and makes the clip an uninterrupted run makes, frame for frame."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from app.cli import main

PROMPT = "a red circle moves right on a black background"
FRAMES, STEPS = 80, 3  # windows of 16, then 8 new frames each: 9 windows, 27 steps
WINDOW_ENDS = [16, *range(24, FRAMES + 1, 8)]

# The command line itself, with two observers that change nothing it does: each checkpoint saved and each step
# done are appended to files the test reads, so it knows when to kill and how much work the killed run had done.
HARNESS = """
import signal
import sys
from pathlib import Path
from app import cli_output
from app.cli import main
from engine.api.events import Progress
from engine.backends import checkpoints

saved, steps = Path(sys.argv[1]), Path(sys.argv[2])
save, show = checkpoints.WindowCheckpoint.save, cli_output.EventPrinter.show

def saving(self, state):
    notices = save(self, state)
    with open(saved, "a") as log:
        log.write(f"{state.next_window}\\n")
    return notices

def showing(self, event):
    show(self, event)
    if isinstance(event, Progress):
        with open(steps, "a") as log:
            log.write(f"{event.step}\\n")

checkpoints.WindowCheckpoint.save, cli_output.EventPrinter.show = saving, showing
# Ctrl+C as a terminal delivers it, even when the tests run as a background job, which starts with SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _args(model, output, *more):
    return [
        "generate", PROMPT, "-o", str(output), "--format", "png", "--model", str(model), "--frames", str(FRAMES),
        "--steps", str(STEPS), "--width", "64", "--height", "64", "--eta", "0.5", "--seed", "5", *more,
    ]  # fmt: skip


def _frames(folder) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


@pytest.fixture(scope="module")
def uninterrupted(model, tmp_path_factory):
    output = tmp_path_factory.mktemp("plain") / "frames"
    assert main(_args(model, output)) == 0
    return _frames(output)


def _lines(path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_long_clip_resumes_to_the_uninterrupted_clip(model, uninterrupted, tmp_path, signum, capsys):
    output, saved, steps = tmp_path / "frames", tmp_path / "saved.log", tmp_path / "steps.log"
    command = [sys.executable, "-c", HARNESS, str(saved), str(steps), *_args(model, output, "--resume")]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # killed two steps into the third window, the first two checkpointed
    while len(_lines(steps)) < 2 * STEPS + 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.poll() is None, run.communicate()
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130), err
    resume = tmp_path / "frames.kinemo-resume"
    assert (resume / "windows.safetensors").is_file() and not output.exists()
    done_steps, kept_windows = max(_lines(steps)), max(_lines(saved))

    # the same command again: the saved windows come back, the rest is made, and the folder goes
    stats = tmp_path / "stats.json"
    assert main([*_args(model, output, "--resume"), "--stats", str(stats)]) == 0
    err = capsys.readouterr().err
    assert "continuing from the checkpoint" in err
    assert np.array_equal(_frames(output), uninterrupted)
    assert not resume.exists()

    # the work lost: steps the killed run had done beyond its checkpoint, and the frames of the window they made
    kept = json.loads(stats.read_text())["resumed_frames"]
    assert kept_windows >= 2 and kept in WINDOW_ENDS and kept >= WINDOW_ENDS[kept_windows - 1]  # a save may land
    # between the kill and its line in the log
    lost_steps = done_steps - (WINDOW_ENDS.index(kept) + 1) * STEPS
    assert 0 <= lost_steps <= STEPS  # at most the steps of the window under way: every finished one was saved
    lost_frames = WINDOW_ENDS[WINDOW_ENDS.index(kept) + 1] - kept if lost_steps else 0
    kept_steps = (WINDOW_ENDS.index(kept) + 1) * STEPS
    assert f"| {kept_steps}/{len(WINDOW_ENDS) * STEPS} [" in err  # the progress bar starts past the kept steps
    print(
        f"{signal.Signals(signum).name}: {lost_steps} of {len(WINDOW_ENDS) * STEPS} steps lost, "
        f"{lost_frames} of {FRAMES} frames recomputed; {kept} frames came back from the checkpoint"
    )


def test_without_resume_nothing_is_checkpointed(model, uninterrupted, tmp_path, monkeypatch):
    from engine.backends import checkpoints

    saves = []
    monkeypatch.setattr(checkpoints.WindowCheckpoint, "save", lambda self, state: saves.append(state))
    output = tmp_path / "frames"
    assert main(_args(model, output)) == 0
    assert saves == [] and sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_with_resume_an_uninterrupted_run_checkpoints_and_leaves_no_folder(model, uninterrupted, tmp_path):
    output = tmp_path / "frames"
    assert main(_args(model, output, "--resume")) == 0
    assert np.array_equal(_frames(output), uninterrupted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_the_help_says_what_resume_does(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at spaces and hyphens
    assert "OUTPUT.kinemo-resume" in text and "Without --resume nothing is checkpointed" in text


# The same observers for a diffusers run: every step is saved (SAVE_EVERY_S 0), each save logged and followed by a
# pause, so the test can kill the run between two steps however fast the tiny pipeline is.
DIFFUSERS_HARNESS = """
import sys, time
from pathlib import Path
from app.cli import main
from engine.backends.diffusers import step_checkpoints

saved = Path(sys.argv[1])
write = step_checkpoints.StepCheckpoint._write

def writing(self, scheduler, step, latents, generator):
    write(self, scheduler, step, latents, generator)
    with open(saved, "a") as log:
        log.write(f"{step + 1}\\n")
    time.sleep(0.5)

step_checkpoints.SAVE_EVERY_S, step_checkpoints.StepCheckpoint._write = 0.0, writing
sys.exit(main(sys.argv[2:]))
"""


def test_a_killed_diffusers_run_resumes_to_the_uninterrupted_clip(build, tmp_path, capsys):
    from tiny_diffusers.cases import CASES

    case = next(c for c in CASES if c.name == "wan-t2v")
    args = ["generate", PROMPT, "--format", "png", "--model", str(build(case)), "--frames", str(case.frames)]
    args += ["--steps", "8", "--width", str(case.size), "--height", str(case.size), "--seed", "2"]
    assert main([*args, "-o", str(tmp_path / "plain")]) == 0
    output, saved = tmp_path / "frames", tmp_path / "saved.log"
    command = [sys.executable, "-c", DIFFUSERS_HARNESS, str(saved), *args, "-o", str(output), "--resume"]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(_lines(saved)) < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.poll() is None, run.communicate()
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    kept = max(_lines(saved))

    assert main([*args, "-o", str(output), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{kept} of 8 steps were made before the run stopped" in err
    assert np.array_equal(_frames(output), _frames(tmp_path / "plain"))
    assert not (tmp_path / "frames.kinemo-resume").exists()
