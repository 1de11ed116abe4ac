"""The studio's queue sent to a Ray cluster: an engine with the interface of engine_client's (start, shutdown,
generate yielding InputsRead and engine events) whose jobs run on the workers of `kinemo batch --ray`
(app.jobs.ray_runner), so the queue, the progress, the previews, the history, Export and Cancel work as with a
local run.

Ray joins with the first job, on the queue's worker thread (never at import or when the window opens; a local
runtime takes ~10 s to start); start() only checks that a HOST:PORT address answers, so an unreachable cluster
is one line in the window at once instead of Ray's minutes of retrying. A worker of each kind (CPU, or GPU for
a diffusers model when the cluster has one) keeps its model loaded between jobs. The request's pictures and clips
travel as bytes; the clip comes back as PNG frames, decoded here into the very frames the worker made (a model's
sound stays there). The studio's run options travel with each job. Cancel stops the worker's job at its next
step; a job still waiting in the queue is never sent. Chosen in settings.json: {"cluster": {"address": "auto"
| "HOST:PORT" | "local"}} ("local": a runtime started on this machine), or with "remote" (app.studio.remote_engine),
never both.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator

from engine.api import errors

AUTO, LOCAL = "auto", "local"  # the cluster this machine's `ray start` joined, or a runtime started here
PROBE_SECONDS = 3.0  # how long start() waits for a HOST:PORT address to accept a connection
EVENTS_SECONDS = 10.0  # how long taking a running job's events from its worker may take
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what a gRPC client says first
HTTP2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame (type 4)
HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")  # host:6379 or [::1]:6379


def cluster_settings(settings: dict) -> str | None:
    """The cluster's address when the studio's settings name one, else None; ValueError in one line for a
    malformed entry."""
    cluster = settings.get("cluster")
    if cluster is None:
        return None
    address = cluster.get("address") if isinstance(cluster, dict) else None
    if not isinstance(address, str) or not (address in (AUTO, LOCAL) or HOST_PORT.match(address)):
        raise ValueError(f'settings cluster.address must be "auto", "local" or HOST:PORT, got {address!r}')
    return address


def chosen_engine(settings: dict):
    """The studio's engine: the cluster or the remote engine its settings name, else the local one. A malformed
    cluster entry, or both a cluster and a remote engine, is said on stderr and in the window (each job fails
    with it): jobs meant for elsewhere never run here unasked."""
    from app.studio.remote_engine import chosen_engine as remote_or_local

    try:
        address = cluster_settings(settings)
        if address is not None and settings.get("remote"):
            raise ValueError("settings name both a remote engine and a cluster: keep one of remote and cluster")
    except ValueError as exc:
        print(f"kinemo studio: {exc}", file=sys.stderr)
        return UnusableEngine(str(exc))
    return ClusterEngine(address) if address is not None else remote_or_local(settings)


class UnusableEngine:
    """The engine the settings describe cannot be used: starting it and every job fail with why, in one line."""

    def __init__(self, problem: str):
        self.problem = problem

    def start(self, warm: bool = False) -> None:
        from app.studio.engine_client import EngineStartFailed

        raise EngineStartFailed(self.problem)

    def shutdown(self, timeout: float = 2.0) -> None:
        pass

    def generate(self, request, should_stop: Callable[[], bool] | None = None, options=None) -> Iterator:
        self.start()
        yield  # a generator, as the queue expects (never reached)


class ClusterEngine:
    """A Ray cluster as the studio's engine; the queue's jobs run there one at a time."""

    def __init__(self, address: str):
        self.address = address
        self._lock = threading.Lock()  # one job at a time, one connect
        self._ray = None  # the ray module once joined
        self._started = False  # a runtime started here: shut down with the engine
        self._pools: dict = {}  # needs a GPU -> app.jobs.ray_runner.Pool of one worker

    def start(self, warm: bool = False) -> None:
        """Check quickly that the cluster's address answers (EngineStartFailed in one line); Ray itself joins
        with the first job."""
        probe(self.address)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Let the workers go; a runtime started here stops (a cluster runs on). A job that still holds the engine
        (a thread abandoned at exit) is waited for timeout seconds, then let go with the runtime."""
        held = self._lock.acquire(timeout=timeout)
        try:
            ray, self._ray = self._ray, None
            for pool in self._pools.values():
                try:
                    pool.kill()
                except Exception:  # noqa: BLE001 - a runtime already gone has nothing left to stop
                    pass
            self._pools.clear()
            if ray is not None and self._started:
                ray.shutdown()
            self._started = False
        finally:
            if held:
                self._lock.release()

    def generate(self, request, should_stop: Callable[[], bool] | None = None, options=None) -> Iterator:
        """Yield InputsRead, the job's events as its worker reports them, then Frames and Finished; raise
        Cancelled when stopped, the worker's error (one line) when the job fails. options: the run's RunOptions."""
        from app.studio.engine_host import InputsRead
        from engine.api.events import Notice
        from engine.api.run_options import RunOptions

        stop = should_stop or (lambda: False)
        job, settings = cluster_job(request, (options or RunOptions()).validate(), self.address)
        yield InputsRead(job.request)
        with self._lock:
            if self._ray is None:
                yield Notice(f"connecting to the Ray cluster at {self.address}…")
                self._connect()
            if stop():
                raise errors.Cancelled("generation cancelled")
            result = yield from self._run(self._pool(job, settings), job, settings, stop)
        yield from finished(result)

    def _connect(self) -> None:
        """Join the cluster (or start a local runtime) once, from the queue's worker thread."""
        import atexit

        from app.cli_args import UsageError
        from app.jobs.ray_runner import connect
        from app.studio.engine_client import EngineStartFailed

        probe(self.address)
        try:
            import ray
        except ImportError:
            raise EngineStartFailed('sending the queue to a cluster needs Ray: pip install "kinemo[cluster]"') from None
        try:
            self._started = connect(ray, self.address, None, lambda text: None)
        except UsageError as exc:
            raise EngineStartFailed(str(exc)) from None
        self._ray = ray
        atexit.register(self.shutdown)

    def _pool(self, job, settings):
        """The pool of the job's kind, made with its first job: GPU workers for a model that needs one when the
        cluster has GPUs, else CPU workers."""
        from app.jobs.ray_runner import Pool

        has_gpus = int(self._ray.cluster_resources().get("GPU", 0)) > 0
        gpu = job.needs_gpu and settings.options.device != "cpu" and has_gpus
        if gpu not in self._pools:
            self._pools[gpu] = Pool(self._ray, settings, 1, gpu)
        return self._pools[gpu]

    def _run(self, pool, job, settings, stop: Callable[[], bool]) -> Iterator:
        """Drive ray_runner.render_one: yield the job's events as they come, stop it on Cancel; its answer."""
        from app.jobs.ray_runner import render_one
        from engine.api.events import Notice

        runs, worker, stop_sent = render_one(self._ray, pool, job, settings), None, False
        try:
            while True:
                try:
                    sent = next(runs)
                except StopIteration as end:
                    yield from self._events(worker)  # the last steps' events, taken before the frames
                    return end.value
                if worker is not None and sent is not worker:  # render_one sent the job again
                    yield Notice("the job's Ray worker died; the job is sent to a fresh one")
                    stop_sent = False  # a Cancel already asked for is sent to the new worker too
                worker = sent
                yield from self._events(worker)
                if not stop_sent and stop():
                    worker.stop.remote()
                    stop_sent = True
        finally:
            runs.close()  # a consumer that stopped listening: the job is stopped on its worker

    def _events(self, worker) -> Iterator:
        from ray.exceptions import RayError

        if worker is None:
            return
        try:
            events = self._ray.get(worker.take_events.remote(), timeout=EVENTS_SECONDS)
        except RayError:  # a worker dead or busy: render_one sees its death and sends the job again
            return
        yield from events


def cluster_job(request, options, address: str):
    """(the ray_runner Job of a studio request, its BatchSettings): the request fingerprinted (the history
    records its inputs' SHA-256), the clip asked for as PNG frames without sound. LoRA files on this machine
    are refused unless the runtime is local (InvalidRequest): a worker elsewhere cannot read them."""
    from pathlib import Path

    from app.jobs.jobs_file import BatchSettings, Job, job_key
    from engine.backends.inputs import fingerprinted
    from engine.registry.loras import HUB_ID

    if address != LOCAL:
        for lora in request.loras:
            if Path(lora.source).expanduser().exists() or not HUB_ID.match(lora.source):
                raise errors.InvalidRequest(
                    f"LoRA {lora.name}: a cluster takes LoRAs by hub id (owner/name), not a file on this machine"
                )
    read = fingerprinted(request, options.token)
    settings = BatchSettings(options=options, format="png", quality=100, audio=False)
    return Job(0, "clip", "png", read, job_key(read, "png", settings)), settings


def finished(result: dict) -> Iterator:
    """A worker's answer as the studio's events: the clip's frames and Finished, or Cancelled, or its error."""
    from engine.api.events import Finished, Frames

    if "cancelled" in result:
        raise errors.Cancelled("generation cancelled")
    if "error" in result:
        raise errors.KinemoError(f"on the Ray cluster: {result['error']}")
    frames = png_frames(result["files"])  # (f, h, w, 3) uint8
    stats = result.get("stats") or {}
    yield Frames(0, frames)
    yield Finished(len(frames), float(stats.get("generate_seconds", 0.0)), stats)


def png_frames(files: dict[str, bytes]):
    """(f, h, w, 3) uint8 frames of a packed folder of PNG frames (frame_0000.png, ...), in frame order."""
    import io

    import numpy as np
    from PIL import Image

    names = sorted((name for name in files if name.endswith(".png")), key=lambda name: int(re.sub(r"\D", "", name)))
    if not names:
        raise errors.KinemoError("the Ray cluster sent back no frames")
    return np.stack([np.asarray(Image.open(io.BytesIO(files[name])).convert("RGB")) for name in names])


def probe(address: str) -> None:
    """EngineStartFailed in one line when a HOST:PORT address (or RAY_ADDRESS, for "auto") does not answer within
    PROBE_SECONDS as a Ray head's GCS does (gRPC: HTTP/2 settings for HTTP/2's preface): Ray itself retries for
    minutes before it gives up, on a closed port and on a port that something else holds alike."""
    from app.studio.engine_client import EngineStartFailed

    target = os.environ.get("RAY_ADDRESS", "") if address == AUTO else address
    if address == LOCAL or not HOST_PORT.match(target):
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS) as connection:
            if os.environ.get("RAY_USE_TLS", "0") not in ("1", "true"):  # a TLS head answers only after a handshake
                connection.sendall(HTTP2_PREFACE + HTTP2_SETTINGS)
                answer = connection.recv(9)  # a frame header: length (3 bytes), type, flags, stream (4 bytes)
                if len(answer) < 4 or answer[3] != HTTP2_SETTINGS[3]:
                    raise EngineStartFailed(
                        f"cannot reach the Ray cluster at {target}: something else answers there (`ray start --head` "
                        "listens on port 6379 unless told otherwise)"
                    )
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise EngineStartFailed(f"cannot reach the Ray cluster at {target}: {reason}") from None
