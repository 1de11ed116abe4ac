"""How the studio talks to the engine: a generator of engine events for one request.

ProcessEngine (the default) runs the engine in a child process (`python -m app.studio.engine_host`) and is
torch-free on this side; the child says hello first, so a process that dies or hangs at start-up is an
EngineStartFailed within seconds instead of a job that never starts. ThreadEngine runs the backend in the calling thread; it is simpler but importing torch
in-process holds the GIL long enough to freeze the window for ~0.2 s, so it is kept only for
comparison (KINEMO_ENGINE=thread) and measurement.

Both are driven from a worker thread, never from the UI thread.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.api import errors

ENGINE_ENV = "KINEMO_ENGINE"
STOP_GRACE_SECONDS = 60.0  # how long a cancelled job may take to acknowledge before the process is killed
START_TIMEOUT_SECONDS = 10.0  # the engine says hello before importing anything heavy: Python's start-up only


class EngineCrashed(errors.KinemoError):
    """The engine process ended unexpectedly; the next job starts a fresh one."""


class EngineStartFailed(errors.KinemoError):
    """The engine process died or did not answer at start-up; the next job tries a fresh one."""


def engine_command() -> list[str]:
    """How the engine process starts: its own module, so no caller's __main__ is ever imported again."""
    return [sys.executable, "-m", "app.studio.engine_host"]


def _engine_environment() -> dict:
    """The studio's environment, with this checkout first on the path (a checkout that is not installed)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class _StderrTail:
    """Reads the engine's stderr on a thread: passes it on to the studio's stderr and keeps the last lines."""

    def __init__(self, stream):
        self.lines: deque = deque(maxlen=20)
        self.thread = threading.Thread(target=self._read, args=(stream,), name="kinemo-engine-stderr", daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                if line.strip():
                    self.lines.append(line)
                try:
                    sys.stderr.write(line + "\n")
                except (OSError, ValueError, AttributeError):
                    pass  # no stderr to pass it on to

    def last_line(self, wait: float = 0.0) -> str:
        self.thread.join(wait)  # the process has ended: let the reader take its final words
        return self.lines[-1] if self.lines else ""


class ProcessEngine:
    """One long-lived engine process; jobs run one at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process = None
        self._conn = None
        self._stderr: _StderrTail | None = None
        self._jobs = itertools.count(1)

    # -- process lifetime ---------------------------------------------------------------------------
    def start(self, warm: bool = False) -> None:
        """Start the engine process if it is not running and wait for its hello; warm=True also imports
        torch there. EngineStartFailed when it dies or says nothing within START_TIMEOUT_SECONDS."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            self._close_locked()
            process = subprocess.Popen(
                engine_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_engine_environment(),
            )
            from app.studio.engine_host import PipeConnection

            conn = PipeConnection(os.dup(process.stdout.fileno()), os.dup(process.stdin.fileno()))
            process.stdin.close()
            process.stdout.close()
            self._process, self._conn, self._stderr = process, conn, _StderrTail(process.stderr)
            problem = self._await_hello()
            if problem is not None:
                detail = self._stderr.last_line(wait=1.0 if process.poll() is not None else 0.0)
                self._close_locked()
                raise EngineStartFailed(
                    f"the engine process did not start: {problem}" + (f": {detail}" if detail else "")
                )
            if warm:
                conn.send(("warm", None, None))

    def _await_hello(self) -> str | None:
        """None once the engine said "ready", else what went wrong."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline:
                if self._conn.poll(0.05):
                    kind = self._conn.recv()[0]
                    return None if kind == "ready" else f"it answered {kind!r} instead of hello"
                if self._process.poll() is not None:
                    return f"it exited with code {self._process.returncode}"
        except (EOFError, OSError, ValueError) as exc:
            code = self._process.poll()
            return f"it exited with code {code}" if code is not None else f"its pipe failed ({exc})"
        return f"it did not answer within {START_TIMEOUT_SECONDS:g} s"

    def _close_locked(self, grace: float = 2.0) -> None:
        """Forget the process: ask it to quit, kill it if it does not, close the pipe (lock held)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return
        try:
            conn.send(("quit", None, None))
        except (OSError, ValueError):
            pass
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        conn.close()

    def shutdown(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._close_locked(timeout)

    def _crashed(self) -> EngineCrashed:
        process = self._process
        code = process.poll() if process is not None else None
        detail = self._stderr.last_line(wait=0.5) if self._stderr is not None and code is not None else ""
        self.shutdown(timeout=0.5)
        return EngineCrashed(
            f"the engine process stopped unexpectedly (exit code {code}); it restarts with the next job"
            + (f" ({detail})" if detail else "")
        )

    @property
    def running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    # -- jobs ---------------------------------------------------------------------------------------
    def generate(self, request, should_stop: Callable[[], bool] | None = None, options=None) -> Iterator:
        """Yield the backend's events for request; raise what the backend raised (Cancelled on stop).

        options: the run's RunOptions (memory setting, int8 weights, ONNX, step cache)."""
        from engine.api.run_options import RunOptions

        options = (options or RunOptions()).validate()
        self.start()
        conn, job = self._conn, next(self._jobs)
        try:
            conn.send(("generate", job, {"request": request.to_dict(), "options": options.to_dict()}))
        except (OSError, ValueError):
            raise self._crashed() from None
        settled = stop_sent = False
        try:
            while True:
                if not stop_sent and should_stop is not None and should_stop():
                    conn.send(("stop", job, None))
                    stop_sent = True
                try:
                    if not conn.poll(0.05):
                        if not self.running:
                            raise self._crashed()
                        continue
                    kind, answered, payload = conn.recv()
                except (EOFError, OSError):
                    raise self._crashed() from None
                if answered != job:
                    continue  # a late answer to an abandoned job
                if kind == "event":
                    yield payload
                elif kind == "inputs":
                    yield self._inputs_read(payload)
                elif kind == "error":
                    settled = True
                    raise payload
                elif kind == "done":
                    settled = True
                    return
        finally:
            if not settled and self._conn is conn:
                self._abandon(conn, job)

    @staticmethod
    def _inputs_read(payload: dict):
        from app.studio.engine_host import InputsRead
        from engine.api.request import GenerationRequest

        return InputsRead(GenerationRequest.from_dict(payload))

    def _abandon(self, conn, job: int) -> None:
        """The consumer stopped early: stop the job and wait until the engine is free again."""
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        try:
            conn.send(("stop", job, None))
            while time.monotonic() < deadline:
                if conn.poll(0.05):
                    kind, answered, _ = conn.recv()
                    if answered == job and kind in ("error", "done"):
                        return
                elif not self.running:
                    break
        except (EOFError, OSError):
            pass
        self.shutdown(timeout=0.5)  # stuck or gone: a fresh process next time


class ThreadEngine:
    """The backend in the calling thread, with loaded backends cached (comparison only)."""

    def __init__(self):
        self._backends: dict = {}

    def start(self, warm: bool = False) -> None:
        pass

    def shutdown(self, timeout: float = 2.0) -> None:
        self._backends.clear()

    def generate(self, request, should_stop: Callable[[], bool] | None = None, options=None) -> Iterator:
        from app.studio.engine_host import InputsRead
        from engine.api.events import Loaded
        from engine.api.run_options import RunOptions
        from engine.backends.base import for_run, open_backend
        from engine.backends.inputs import fingerprinted

        options = (options or RunOptions()).validate()
        request = fingerprinted(request, options.token)
        yield InputsRead(request)
        key = (request.model, *options.backend_key)
        backend = for_run(self._backends.get(key) or open_backend(request.model, options), options)
        for event in backend.generate(request, should_stop=should_stop, memory=options.memory):
            if isinstance(event, Loaded):
                self._backends[key] = backend
            yield event


_shared: dict = {}
_shared_lock = threading.Lock()


def shared_engine():
    """The process-wide engine of the kind KINEMO_ENGINE asks for now (thread: ThreadEngine), one of each
    kind, so a window built while the variable was set never hands its kind to later windows; shut down at
    exit."""
    kind = "thread" if os.environ.get(ENGINE_ENV) == "thread" else "process"
    with _shared_lock:
        engine = _shared.get(kind)
        if engine is None:
            import atexit

            engine = _shared[kind] = ThreadEngine() if kind == "thread" else ProcessEngine()
            atexit.register(engine.shutdown)
        return engine
