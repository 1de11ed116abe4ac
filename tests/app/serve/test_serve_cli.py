"""`kinemo serve` as a command: the URL and token it prints, its flags, and a clean stop on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from app.cli import main


def _start(tmp_path, *flags, token=None):
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the server's jobs folder goes under tmp_path
    env.pop("KINEMO_TOKEN", None)
    if token is not None:
        env["KINEMO_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = process.stdout.readline().split()[2]  # "kinemo serve: http://127.0.0.1:PORT  (...)"
    said = process.stdout.readline().strip()
    return process, url, said


def _jobs_folders(tmp_path):
    return [p for p in tmp_path.iterdir() if p.name.startswith("kinemo-serve-")]


def _jobs(url, token):
    request = urllib.request.Request(url + "/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("given", [None, "a-token-from-the-environment"])
def test_serve_prints_where_and_how_and_stops_cleanly(tmp_path, given):
    process, url, said = _start(tmp_path, token=given)
    try:
        assert url.startswith("http://127.0.0.1:")
        token = given or said.removeprefix("token: ")
        if given:  # a token from the environment is not echoed
            assert said == "token: from KINEMO_TOKEN"
        else:
            assert said.startswith("token: ") and len(token) >= 32
        assert _jobs(url, token) == {"jobs": []}
        assert _jobs_folders(tmp_path)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "kinemo serve: stopped" in err
    assert _jobs_folders(tmp_path) == []  # the jobs' folder goes with the server


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--max-body-mb", "0"], "--max-body-mb must be above 0"),
        (["--preview-every", "0"], "--preview-every must be at least 1"),
        (["--device", "tpu"], "unknown device"),
        (["--onnx", "--onnx-temporal"], "drop --onnx-temporal"),
        (["--host", "999.1.1.1"], "cannot listen on 999.1.1.1"),
    ],
)
def test_bad_flags_end_in_one_line(capsys, flags, said):
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn"])
def test_without_the_serve_extra_it_says_what_to_install(capsys, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # as a plain `pip install kinemo` leaves it: not importable
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "kinemo[serve]"' in err and err.count("\n") == 1
