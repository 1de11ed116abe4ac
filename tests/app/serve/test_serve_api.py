"""`kinemo serve`'s HTTP API against a real server on a loopback port, with the shipped starter models."""

import base64
import hashlib
import http.client
import json
import urllib.error
import urllib.request

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from app.serve.client import ServeError
from app.serve.stream import strip_frames

PROMPT = "a red circle moves right on a black background"
SMALL = {"prompt": PROMPT, "width": 64, "height": 64, "steps": 3, "seed": 5}
TOKEN = "test-token-" + "x" * 20
MAX_BODY = 1 << 20  # 1 MiB: the tests' pictures are far smaller; the oversized body is declared larger


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real server (uvicorn in a thread) on a free loopback port, for the whole module."""
    from app.serve.serve_cli import ServerThread
    from engine.api.run_options import RunOptions

    root = tmp_path_factory.mktemp("serve")
    with ServerThread(RunOptions(device="cpu"), root, TOKEN, MAX_BODY, preview_every=2) as server:
        yield server


def _decode(data: bytes, tmp_path, name="result.mp4"):
    path = tmp_path / name
    path.write_bytes(data)
    reader = imageio_ffmpeg.read_frames(str(path))
    w, h = next(reader)["size"]
    return path, np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def _status(url, headers=None, method="GET"):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _follow(client, job_id):
    """Every (kind, data) of the job's event stream, which ends with its final state."""
    return list(client.events(job_id))


def test_every_call_needs_the_token(served):
    for path in ("/v1/jobs", "/openapi.json", "/v1/jobs/whatever/result"):
        code, body = _status(served.url + path)
        assert code == 401 and "bearer token" in body["detail"], path
        code, _ = _status(served.url + path, {"Authorization": "Bearer wrong-" + TOKEN})
        assert code == 401, path
    with pytest.raises(ServeError) as refused:
        served.client("nope").submit(SMALL)
    assert refused.value.status == 401
    code, description = _status(served.url + "/openapi.json", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/result"} <= set(
        description["paths"]
    )
    assert description["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    body_schema = description["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"prompt", "seed", "image_data", "format"} <= set(body_schema["properties"])


@pytest.mark.parametrize(
    "job, named",
    [
        ({"prompt": PROMPT, "frames": "many"}, "frames"),
        ({"prompt": PROMPT, "width": 63}, "width"),
        ({"prompt": PROMPT, "steps": 0}, "steps"),
        ({"frames": 4}, "prompt"),
        ({"prompt": PROMPT, "colour": "red"}, "colour"),
        ({"prompt": PROMPT, "format": "png"}, "format"),
        ({"prompt": PROMPT, "quality": 101}, "quality"),
        ({"prompt": PROMPT, "model": "no-such-model-anywhere"}, "no-such-model-anywhere"),
        ({"prompt": PROMPT, "image_data": "not base64!"}, "image_data"),
        ({"prompt": PROMPT, "image_data": base64.b64encode(b"not a picture").decode()}, "image_data"),
        ({"prompt": PROMPT, "loras": [{"source": "owner/lora"}]}, "LoRA"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field(served, job, named):
    with pytest.raises(ServeError) as refused:
        served.client().submit(job)
    assert refused.value.status == 400
    assert named in str(refused.value)
    assert "kinemo-serve" not in str(refused.value) and str(served.queue.root) not in str(refused.value)


def test_a_body_that_is_not_json_is_a_400(served):
    request = urllib.request.Request(
        served.url + "/v1/jobs", data=b"{nope", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and "JSON" in json.loads(refused.value.read())["detail"]


@pytest.mark.parametrize("field", ["image", "last_image", "video", "extends"])
def test_a_file_on_the_server_is_refused(served, tmp_path, field):
    secret = tmp_path / "on-the-server.png"
    Image.new("RGB", (64, 64)).save(secret)
    with pytest.raises(ServeError) as refused:
        served.client().submit({"prompt": PROMPT, field: str(secret)})
    assert refused.value.status == 400
    assert f"{field} names a file on the server" in str(refused.value) and f"{field}_data" in str(refused.value)


def test_a_lora_file_on_the_server_is_refused(served, tmp_path):
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"weights")
    with pytest.raises(ServeError) as refused:
        served.client().submit({"prompt": PROMPT, "loras": [{"source": str(lora)}]})
    assert refused.value.status == 400 and "loras" in str(refused.value)


def test_an_oversized_body_is_refused_before_it_is_read(served):
    host, port = served.url.removeprefix("http://").split(":")
    for headers, expected in (({"Authorization": f"Bearer {TOKEN}"}, 413), ({}, 401)):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.putrequest("POST", "/v1/jobs")
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(MAX_BODY + 1))
        connection.endheaders()
        connection.send(b'{"prompt": "')  # the rest never comes: the answer must not wait for it
        response = connection.getresponse()
        assert response.status == expected
        connection.close()


def test_a_job_makes_the_clip_generate_makes(served, tmp_path, capsys):
    from app.cli import main
    from export import read_record

    client = served.client()
    job = client.submit(SMALL)
    assert job["state"] == "queued" and job["progress"] == {"step": 0, "total": 0}
    events = _follow(client, job["id"])
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "queued" and kinds[-1] == "done" and "running" in kinds
    assert [data["step"] for kind, data in events if kind == "progress"] == [1, 2, 3]
    previews = [data for kind, data in events if kind == "preview"]
    assert [p["step"] for p in previews] == [1, 3]  # preview_every=2, and the last step's
    assert strip_frames(previews[-1]).shape == (8, 64, 64, 3)
    assert events[-1][1]["result"] == f"/v1/jobs/{job['id']}/result"

    summary = client.job(job["id"])
    assert summary["state"] == "done" and summary["progress"] == {"step": 3, "total": 3} and summary["error"] is None
    assert job["id"] in [j["id"] for j in client.jobs()]
    path, frames = _decode(client.result(job["id"]), tmp_path)
    assert frames.shape == (16, 64, 64, 3)  # frames (16) from the model's defaults
    record = read_record(path)["request"]
    assert (record["prompt"], record["seed"], record["steps"], record["fps"]) == (PROMPT, 5, 3, 8)

    direct = tmp_path / "direct.mp4"
    assert (
        main(["generate", PROMPT, "-o", str(direct), "--width", "64", "--height", "64", "--steps", "3", "--seed", "5"])
        == 0
    )
    capsys.readouterr()
    assert np.array_equal(frames, _decode(direct.read_bytes(), tmp_path, "direct-copy.mp4")[1])

    assert list(client.events(job["id"], after=len(events) - 3)) == events[-2:]  # Last-Event-ID resumes

    longer = client.submit({**SMALL, "frames": 8, "extends_data": base64.b64encode(path.read_bytes()).decode()})
    assert _follow(client, longer["id"])[-1][0] == "done"
    extended, frames = _decode(client.result(longer["id"]), tmp_path, "extended.mp4")
    assert frames.shape == (24, 64, 64, 3)  # the clip sent, then 8 frames more
    assert read_record(extended)["request"]["extends"] == "extends_data"

    assert client.cancel(job["id"])["state"] == "done"  # a finished job is forgotten, its file removed
    with pytest.raises(ServeError) as gone:
        client.job(job["id"])
    assert gone.value.status == 404


def test_image_to_video_takes_the_picture_from_the_body(served, tmp_path):
    from export import read_record

    pixels = np.zeros((64, 96, 3), np.uint8)  # (h, w, 3): the clip takes the picture's aspect
    pixels[:, :, 2] = np.linspace(0, 255, 96, dtype=np.uint8)
    pixels[16:48, 20:50] = (230, 40, 40)
    picture = tmp_path / "picture.png"
    Image.fromarray(pixels).save(picture)
    sent = picture.read_bytes()

    client = served.client()
    job = client.submit({"prompt": "the camera pans right", "steps": 2, "image_data": base64.b64encode(sent).decode()})
    assert _follow(client, job["id"])[-1][0] == "done"
    path, frames = _decode(client.result(job["id"]), tmp_path)
    assert frames.shape[1:] == (64, 96, 3)
    assert np.abs(frames[0].astype(int) - pixels).mean() < 8  # frame 0 is the picture (through H.264)
    record = read_record(path)["request"]
    assert record["image_sha256"] == hashlib.sha256(sent).hexdigest()
    assert record["image"] == "image_data"  # the file came in the body; the server's copy is not named


def test_cancel_stops_a_running_job_and_a_queued_one_never_runs(served):
    client = served.client()
    running = client.submit({**SMALL, "steps": 200})
    queued = client.submit(SMALL)
    stream = client.events(running["id"])
    for kind, _ in stream:
        if kind == "progress":
            break
    with pytest.raises(ServeError) as early:
        client.result(running["id"])
    assert early.value.status == 409 and "running" in str(early.value)

    assert client.cancel(queued["id"])["state"] == "cancelled"
    assert client.cancel(running["id"])["state"] in ("running", "cancelled")  # it stops at its next step
    rest = list(stream)
    assert rest[-1][0] == "cancelled"
    steps = [data["step"] for kind, data in rest if kind == "progress"]
    assert not steps or max(steps) < 200
    assert client.job(running["id"])["state"] == "cancelled"
    assert [kind for kind, _ in _follow(client, queued["id"])] == ["queued", "cancelled"]
    for job in (running, queued):
        with pytest.raises(ServeError) as none:
            client.result(job["id"])
        assert none.value.status == 409 and "cancelled" in str(none.value)
    assert not served.queue.get(running["id"]).output.exists()


def test_an_unknown_job_is_a_404(served):
    client = served.client()
    for call in (client.job, client.result, client.cancel, lambda job_id: list(client.events(job_id))):
        with pytest.raises(ServeError) as unknown:
            call("no-such-job")
        assert unknown.value.status == 404 and "no job no-such-job" in str(unknown.value)


def test_a_job_that_fails_says_why_and_has_no_result(served, tmp_path):
    from tiny_models import save_tiny_model

    broken = save_tiny_model(tmp_path / "broken-model")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # passes the request's checks, fails when it loads
    client = served.client()
    job = client.submit({**SMALL, "model": str(broken)})
    kind, summary = _follow(client, job["id"])[-1]
    assert kind == "failed" and summary["state"] == "failed" and summary["error"]
    assert "\n" not in summary["error"]
    with pytest.raises(ServeError) as none:
        client.result(job["id"])
    assert none.value.status == 409 and summary["error"] in str(none.value)
    again = client.submit(SMALL)  # the server goes on
    assert _follow(client, again["id"])[-1][0] == "done"
