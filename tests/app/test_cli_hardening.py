"""The command line loses nothing: signals stop a run like Ctrl+C, outputs are checked before any work,
broken pipes and bad files end in one line."""

import os
import signal
import subprocess
import sys
import time

import pytest

from app.cli import main

PROMPT = "a red circle moves right on a black background"


def _kinemo(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_export_keeps_the_old_clip_and_leaves_nothing(tmp_path, signum):
    old = tmp_path / "clip.mp4"
    old.write_bytes(b"the good clip")
    run = _kinemo("generate", PROMPT, "-o", "clip.mp4", "--frames", "200", "--steps", "2", cwd=tmp_path)
    deadline = time.monotonic() + 120  # the export starts with the first window: wait for its temporary
    while not list(tmp_path.glob(".clip.mp4*.partial")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, run.communicate()
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 128 + signum
    assert err.strip().splitlines()[-1] == f"kinemo: stopped by signal {signum}; nothing was written"
    assert old.read_bytes() == b"the good clip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_stats_naming_the_clip_is_refused_before_any_work(tmp_path, capsys):
    code = main(["generate", PROMPT, "-o", str(tmp_path / "c.mp4"), "--stats", str(tmp_path / "c.mp4")])
    assert code == 2 and "--stats names the output clip itself" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["-o", "--stats"])
def test_special_files_and_impossible_names_are_refused_before_any_work(tmp_path, capsys, flag):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    long_name = tmp_path / ("n" * 300 + ".mp4")
    for bad in (fifo, long_name):
        args = ["generate", PROMPT, "-o", str(tmp_path / "c.mp4")]
        args = args[:3] + [str(bad)] if flag == "-o" else args + ["--stats", str(bad)]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ("not a regular file" in err or "longer than" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.mp4"]


def test_info_into_a_closed_pipe_ends_quietly(tmp_path):
    assert main(["generate", PROMPT, "-o", str(tmp_path / "c.mp4"), "--steps", "1", "--frames", "2"]) == 0
    shell = f"{sys.executable} -m app.cli info {tmp_path / 'c.mp4'} | head -c 1"
    done = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_models_commands_know_both_bundled_models(capsys):
    import json

    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "kinemo-starter " in listed and "kinemo-starter-fast" in listed
    for model in ("kinemo-starter", "kinemo-starter-fast"):
        assert main(["models", "info", model]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["id"] == model and info["bundled"] and info["tasks"] == ["t2v", "i2v"]
        assert main(["models", "pull", model]) == 2
        assert "ships with Kinemo" in capsys.readouterr().err


def test_vocabulary_lists_what_the_bundled_models_know(capsys):
    from engine.kinemo.vocabulary import PICTURE_MOVES, SHAPES

    assert main(["vocabulary"]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in (*SHAPES, *PICTURE_MOVES))


def test_speed_switches_not_built_yet_are_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    for flag in (["--cache", "mag"], ["--attention", "flash"], ["--compile"]):
        assert main(["generate", "a red circle", "-o", str(out), *flag]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not available for the bundled model in this version of Kinemo yet" in err[0], err
        assert not out.exists()
