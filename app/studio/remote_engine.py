"""The studio's engine on another machine: `kinemo serve` driven over HTTP (app.serve.client), with the interface of
engine_client's engines (start, shutdown, generate yielding InputsRead and engine events), so the queue, the
preview, the progress and Cancel work as they do with the local engine process.

The request's pictures and clips travel in the job's body (the server never reads a path of this machine); the
history records the local paths with their SHA-256, computed here from the bytes sent. The run options are the
server's (`kinemo serve`'s flags): the studio's switches do not travel. Previews come as the server's PNG strips.
The finished clip comes back as an MP4 at quality 100 and is decoded into frames here (nearly lossless); a model's
sound stays on the server (the studio gets the frames only). Cancel asks the server to stop the job, which it does
at its next step. The engine is chosen in settings.json: {"remote": {"url": "http://host:8765", "token": "..."}}.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from app.serve.client import ServeClient, ServeError, file_data
from engine.api import errors

INPUTS = ("image", "last_image", "video", "extends")  # request fields naming a local file, sent as <name>_data
STOP_POLL_SECONDS = 0.1  # how often a running job's Cancel is looked for while the event stream is quiet
RESULT_QUALITY = 100  # the clip comes back as MP4; at 100 it decodes to nearly the frames the server made


def remote_settings(settings: dict) -> tuple[str, str] | None:
    """(url, token) when the studio's settings name a remote engine, else None; a malformed entry is ValueError."""
    remote = settings.get("remote")
    if not remote:
        return None
    url, token = (remote.get("url"), remote.get("token")) if isinstance(remote, dict) else (None, None)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"settings remote.url must be an http:// or https:// address, got {url!r}")
    if not isinstance(token, str) or not token:
        raise ValueError("settings remote.token must be the token `kinemo serve` printed")
    return url, token


def chosen_engine(settings: dict):
    """The studio's engine: the remote one its settings name, else the local one (engine_client.shared_engine);
    a malformed remote entry is said on stderr and the local engine used."""
    import sys

    from app.studio.engine_client import shared_engine

    try:
        remote = remote_settings(settings)
    except ValueError as exc:
        print(f"kinemo studio: {exc}; using the local engine", file=sys.stderr)
        remote = None
    return RemoteEngine(*remote) if remote is not None else shared_engine()


class RemoteEngine:
    """A `kinemo serve` server as the studio's engine; jobs run one at a time there."""

    def __init__(self, url: str, token: str):
        self.client = ServeClient(url, token)

    def start(self, warm: bool = False) -> None:
        """Check the server answers and takes the token (EngineStartFailed in one line otherwise)."""
        from app.studio.engine_client import EngineStartFailed

        try:
            self.client.jobs()
        except ServeError as exc:
            raise EngineStartFailed(f"the remote engine at {self.client.url} did not answer: {exc}") from None

    def shutdown(self, timeout: float = 2.0) -> None:
        pass  # the server runs on; a job still running there was cancelled when its generator closed

    def generate(self, request, should_stop: Callable[[], bool] | None = None, options=None) -> Iterator:
        """Yield InputsRead, then the job's events as engine events, then Frames and Finished; raise Cancelled
        when stopped, the server's error (one line) when the job fails. options: the server's are used."""
        from app.studio.engine_host import InputsRead

        body, read = job_body(request)
        yield InputsRead(read)
        job = self._submit(body)
        stopper = _Stopper(self.client, job["id"], should_stop)
        settled = False
        try:
            for kind, data in self.client.events(job["id"]):
                event = engine_event(kind, data)
                if event is not None:
                    yield event
                if kind in ("done", "failed", "cancelled"):
                    settled = True
                    yield from self._ended(kind, data, job["id"])
                    return
            raise errors.KinemoError("the remote engine's event stream ended before the job did")
        except ServeError as exc:
            if stopper.cancelled:  # cancelled as it finished: the server forgot the job with its result
                raise errors.Cancelled("generation cancelled") from None
            raise errors.KinemoError(f"the remote engine at {self.client.url}: {exc}") from None
        finally:
            stopper.close(cancel=not settled)

    def _submit(self, body: dict) -> dict:
        try:
            return self.client.submit(body)
        except ServeError as exc:
            raise (errors.InvalidRequest if exc.status == 400 else errors.KinemoError)(str(exc)) from None

    def _ended(self, kind: str, summary: dict, job_id: str) -> Iterator:
        """The job's end: its frames and Finished when done, else Cancelled or the server's error."""
        from engine.api.events import Finished, Frames
        from engine.util.videos import load_video

        if kind == "cancelled":
            raise errors.Cancelled("generation cancelled")
        if kind == "failed":
            raise errors.KinemoError(summary.get("error") or "the job failed on the remote engine")
        with tempfile.TemporaryDirectory(prefix="kinemo-remote-") as folder:
            path = Path(folder) / "result.mp4"
            self.client.result(job_id, path)
            frames, _ = load_video(path)  # (f, h, w, 3) uint8
        self.client.cancel(job_id)  # a finished job is forgotten on the server: its file is here now
        stats = summary.get("stats") or {}
        yield Frames(0, frames)
        yield Finished(len(frames), float(stats.get("generate_seconds", 0.0)), stats)


def job_body(request) -> tuple[dict, object]:
    """(the job's JSON body, the request with its inputs' SHA-256): local files travel in <name>_data, LoRAs by
    hub id only (InvalidRequest for a LoRA file, which the server cannot read)."""
    from engine.registry.loras import HUB_ID
    from engine.util.files import file_sha256

    body = {k: v for k, v in request.to_dict().items() if k != "schema" and not k.endswith("_sha256")}
    changes: dict = {}
    for name in INPUTS:
        path = body.pop(name)
        if path is None:
            continue
        if not Path(path).expanduser().is_file():
            raise errors.InvalidRequest(f"{name}: a remote engine takes files only, and {path} is not one")
        body[f"{name}_data"] = file_data(path)
        changes[f"{name}_sha256"] = file_sha256(Path(path).expanduser())
    for lora in request.loras:
        if Path(lora.source).expanduser().exists() or not HUB_ID.match(lora.source):
            raise errors.InvalidRequest(
                f"LoRA {lora.name}: a remote engine takes LoRAs by hub id (owner/name), not a file on this machine"
            )
    body.update(format="mp4", quality=RESULT_QUALITY, audio=False)
    return body, request.with_changes(**changes)


def engine_event(kind: str, data: dict):
    """The engine event of one of the server's stream events (None for those the studio does not show)."""
    from app.serve.stream import strip_frames
    from engine.api.events import Loaded, Notice, Preview, Progress

    if kind == "progress":
        return Progress(data["step"], data["total"], 0, data.get("elapsed", 0.0))
    if kind == "preview":
        return Preview(data["step"], strip_frames(data))
    if kind == "notice":
        return Notice(data["message"])
    if kind == "loaded":
        return Loaded(data["model"], data.get("seconds", 0.0))
    return None


class _Stopper:
    """Watches should_stop on a thread while the event stream waits, and cancels the job on the server once."""

    def __init__(self, client: ServeClient, job_id: str, should_stop: Callable[[], bool] | None):
        self.client, self.job_id, self.should_stop = client, job_id, should_stop
        self.done = threading.Event()
        self.cancelled = False
        self.thread = threading.Thread(target=self._watch, name="kinemo-remote-stop", daemon=True)
        if should_stop is not None:
            self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(STOP_POLL_SECONDS):
            if self.should_stop():
                self._cancel()
                return

    def _cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            try:
                self.client.cancel(self.job_id)
            except ServeError:
                pass  # gone or unreachable: nothing is left running there to stop

    def close(self, cancel: bool) -> None:
        """Stop watching; cancel the job when it did not end (the consumer stopped listening)."""
        self.done.set()
        if cancel:
            self._cancel()
