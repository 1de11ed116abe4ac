"""`kinemo batch` in this process: the JOBS file's validation, clips equal to generate's, failures, the journal's
resume, and a driver killed with SIGKILL mid-batch then resumed. The Ray runner: tests/app/jobs/test_batch_ray.py."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import decode, journal, run, tiny_jobs, write_jobs

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ('{"prompt": "a red circle", "frames": 0}', "JOBS line 2: frames must be between"),
        ('{"prompt": "a red circle", "colour": "red"}', "JOBS line 2: unknown request fields: colour"),
        ('{"prompt": "a red circle",', "JOBS line 2: not valid JSON"),
        ('["a red circle"]', "JOBS line 2: expected a JSON object"),
        ('{"frames": 8}', "JOBS line 2: the request has no prompt"),
        ('{"prompt": "a red circle", "name": "../up"}', "JOBS line 2: name must be a plain file name"),
        ('{"prompt": "a red circle", "format": "avi"}', "JOBS line 2: format must be one of"),
        ('{"prompt": "a red circle", "image": "missing.png"}', "JOBS line 2: image not found"),
        ('{"prompt": "a red circle", "name": "first"}', "JOBS line 2: name 'first' is taken by line 1"),
        ('{"prompt": "a red circle", "seed": "zero"}', "JOBS line 2: seed must be a whole number"),
    ],
)
def test_a_malformed_jobs_file_is_one_line_and_nothing_is_made(tmp_path, capsys, line, said):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "a blue square", "name": "first"}\n' + line + "\n")
    code, out, err = run(capsys, "batch", jobs, "-o", tmp_path / "out")
    assert code == 2 and out == ""
    assert err.startswith(f"kinemo: error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_flags_and_an_empty_file_are_refused(tmp_path, capsys):
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"prompt": "a red circle"}])
    (tmp_path / "file").write_text("")
    for argv, said in (
        ((jobs, "-o", tmp_path / "file"), "the output must be a folder"),
        ((jobs, "-o", tmp_path / "out", "--workers", "2"), "--workers says how many Ray workers"),
        ((tmp_path / "none.jsonl", "-o", tmp_path / "out"), "cannot read the JOBS file"),
    ):
        code, _, err = run(capsys, "batch", *argv)
        assert code == 2 and said in err and err.count("\n") == 1, err
    (tmp_path / "blank.jsonl").write_text("\n\n")
    code, _, err = run(capsys, "batch", tmp_path / "blank.jsonl", "-o", tmp_path / "out")
    assert code == 2 and "holds no jobs" in err


def test_a_batch_equals_generate_frame_for_frame(tmp_path, capsys, tiny_model):
    picture = tmp_path / "pictures" / "start.png"
    picture.parent.mkdir()
    from PIL import Image

    Image.fromarray(np.tile(np.arange(48, dtype=np.uint8)[:, None, None] * 5, (1, 64, 3))).save(picture)
    jobs = write_jobs(
        tmp_path / "pictures" / "jobs.jsonl",  # relative paths resolve against the JOBS file's folder
        [
            {
                "prompt": "a red circle moves right",
                "model": tiny_model,
                "steps": 3,
                "frames": 6,
                "name": "text",
                "seed": 5,
            },
            {"prompt": "a blue square moves left", "model": tiny_model, "steps": 2, "image": "start.png"},
            {"prompt": "a green circle", "model": tiny_model, "steps": 2, "width": 48, "format": "gif"},
        ],
    )
    code, out, err = run(capsys, "batch", jobs, "-o", tmp_path / "out")
    assert code == 0, err
    names = ["text.mp4", "2.mp4", "3.gif"]
    assert out.split() == [str(tmp_path / "out" / name) for name in names]
    generated = [
        ("a red circle moves right", "--steps", 3, "--frames", 6, "--seed", 5),
        ("a blue square moves left", "--steps", 2, "--image", picture),
        ("a green circle", "--steps", 2, "--width", 48),
    ]
    for name, argv in zip(names, generated):
        reference = tmp_path / f"generated-{name}"
        code, _, err = run(capsys, "generate", *argv, "--model", tiny_model, "-o", reference)
        assert code == 0, err
        assert np.array_equal(decode(tmp_path / "out" / name), decode(reference)), name
        made, wanted = (
            json.loads(run(capsys, "info", path)[1])["request"] for path in (tmp_path / "out" / name, reference)
        )
        assert made == wanted, name
    assert all(entry["state"] == "done" for entry in journal(tmp_path / "out").values())


def broken_model(tiny_model, folder) -> str:
    """A copy of the tiny model whose weights are cut short: it validates, then fails to load."""
    shutil.copytree(tiny_model, folder)
    for weights in Path(folder).glob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])
    return str(folder)


def test_a_failed_job_is_recorded_and_the_others_go_on(tmp_path, capsys, tiny_model):
    jobs = tiny_jobs(tiny_model, 3)
    jobs[1]["model"] = broken_model(tiny_model, tmp_path / "broken")
    code, out, err = run(capsys, "batch", write_jobs(tmp_path / "jobs.jsonl", jobs), "-o", tmp_path / "out")
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == ["1.mp4", "3.mp4"]
    failed = [entry for entry in journal(tmp_path / "out").values() if entry["state"] == "failed"]
    assert len(failed) == 1 and failed[0]["file"] == "2.mp4" and "\n" not in failed[0]["error"]
    assert f"2 (line 2) failed: {failed[0]['error']}" in err and "failed: 2 (see" in err

    # mended, the failed job alone is made by the next run
    made = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in ("1.mp4", "3.mp4")}
    shutil.rmtree(tmp_path / "broken")
    shutil.copytree(tiny_model, tmp_path / "broken")
    code, _, err = run(capsys, "batch", tmp_path / "jobs.jsonl", "-o", tmp_path / "out")
    assert code == 0 and "2 of 3 jobs were finished by an earlier run" in err
    assert {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in made} == made
    assert all(entry["state"] == "done" for entry in journal(tmp_path / "out").values())


def test_a_second_run_skips_finished_jobs_and_redoes_the_rest(tmp_path, capsys, tiny_model):
    jobs = write_jobs(tmp_path / "jobs.jsonl", tiny_jobs(tiny_model, 4))
    out = tmp_path / "out"
    assert run(capsys, "batch", jobs, "-o", out)[0] == 0
    first = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*.mp4")}
    (out / "2.mp4").unlink()  # gone: made again
    (out / "3.mp4").write_bytes(b"not the clip")  # changed: made again
    time.sleep(0.01)
    code, _, err = run(capsys, "batch", jobs, "-o", out)
    assert code == 0 and "2 of 4 jobs were finished by an earlier run" in err
    for name in ("1.mp4", "4.mp4"):  # untouched
        assert (out / name).stat().st_mtime_ns == first[name][0] and (out / name).read_bytes() == first[name][1]
    for name in ("2.mp4", "3.mp4"):  # made again, the same clips
        assert (out / name).stat().st_mtime_ns > first[name][0]
        assert np.array_equal(decode(out / name), decode_bytes(tmp_path, first[name][1])), name

    # a job whose request changed is redone under its new key, the same name
    changed = tiny_jobs(tiny_model, 4)
    changed[3]["seed"] = 99
    code, _, err = run(capsys, "batch", write_jobs(jobs, changed), "-o", out)
    assert code == 0 and "3 of 4 jobs were finished" in err
    assert json.loads(run(capsys, "info", out / "4.mp4")[1])["request"]["seed"] == 99


def decode_bytes(tmp_path, data: bytes) -> np.ndarray:
    path = tmp_path / "decoded.mp4"
    path.write_bytes(data)
    return decode(path)


def batch_killed_when(jobs, out, ready) -> bool:
    """`kinemo batch jobs -o out` in a process of its own, killed with SIGKILL once ready() holds; whether it was."""
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "batch", str(jobs), "-o", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:
            if ready():
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        child.kill()
        child.wait()
    return child.returncode == -signal.SIGKILL


def test_a_driver_killed_mid_batch_resumes_to_the_same_clips(tmp_path, capsys, tiny_model):
    jobs = write_jobs(tmp_path / "jobs.jsonl", tiny_jobs(tiny_model, 8, steps=8, frames=8))
    out = tmp_path / "out"
    # killed as soon as the journal holds a finished job
    killed = batch_killed_when(jobs, out, lambda: (out / ".kinemo-batch" / "journal.json").exists() and journal(out))
    assert killed, "the batch ended before it could be killed"
    finished = {entry["file"]: (out / entry["file"]).stat().st_mtime_ns for entry in journal(out).values()}
    assert 1 <= len(finished) < 8

    code, _, err = run(capsys, "batch", jobs, "-o", out)
    assert code == 0, err
    assert f"{len(finished)} of 8 jobs were finished by an earlier run" in err
    assert all((out / name).stat().st_mtime_ns == mtime for name, mtime in finished.items())
    assert not list(out.glob(".*.partial")), "the killed run's temporaries are gone"
    reference = tmp_path / "reference"
    assert run(capsys, "batch", jobs, "-o", reference)[0] == 0
    for i in range(1, 9):
        assert np.array_equal(decode(out / f"{i}.mp4"), decode(reference / f"{i}.mp4")), i


def test_a_long_clip_killed_mid_job_continues_from_its_own_checkpoint(tmp_path, capsys, tiny_model):
    jobs = write_jobs(tmp_path / "jobs.jsonl", tiny_jobs(tiny_model, 1, steps=6, frames=96))
    out = tmp_path / "out"
    checkpoints = out / ".kinemo-batch" / "checkpoints"
    # killed as soon as the job's first window is checkpointed
    assert batch_killed_when(jobs, out, lambda: list(checkpoints.glob("*/*.safetensors"))), "the job ended first"
    [folder] = list(checkpoints.iterdir())  # the job's own, named by its key
    assert len(folder.name) == 64

    code, _, err = run(capsys, "batch", jobs, "-o", out)
    assert code == 0, err
    assert f"1: continuing from the checkpoint in {folder}" in err
    assert not folder.exists(), "a finished job's checkpoint is removed"
    assert journal(out)["1.mp4"]["key"] == folder.name
    reference = tmp_path / "reference"
    assert run(capsys, "batch", jobs, "-o", reference)[0] == 0
    assert np.array_equal(decode(out / "1.mp4"), decode(reference / "1.mp4"))


def test_the_same_request_under_two_names_makes_two_files_both_kept(tmp_path, capsys, tiny_model):
    [job] = tiny_jobs(tiny_model, 1)
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{**job, "name": "a"}, {**job, "name": "b"}])
    out = tmp_path / "out"
    assert run(capsys, "batch", jobs, "-o", out)[0] == 0
    assert np.array_equal(decode(out / "a.mp4"), decode(out / "b.mp4"))
    assert journal(out)["a.mp4"]["key"] == journal(out)["b.mp4"]["key"]
    code, _, err = run(capsys, "batch", jobs, "-o", out)
    assert code == 0 and "2 of 2 jobs were finished by an earlier run" in err
