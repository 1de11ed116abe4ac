"""How the studio talks to the engine: a generator of engine events for one request.

ProcessEngine (the default) runs the engine in a child process (engine_host.py) and is torch-free
on this side. ThreadEngine runs the backend in the calling thread; it is simpler but importing torch
in-process holds the GIL long enough to freeze the window for ~0.2 s, so it is kept only for
comparison (KINEMO_ENGINE=thread) and measurement.

Both are driven from a worker thread, never from the UI thread.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator

from engine.api import errors

ENGINE_ENV = "KINEMO_ENGINE"
STOP_GRACE_SECONDS = 60.0  # how long a cancelled job may take to acknowledge before the process is killed


class EngineCrashed(errors.KinemoError):
    """The engine process ended unexpectedly; the next job starts a fresh one."""


class ProcessEngine:
    """One long-lived engine process; jobs run one at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process = None
        self._conn = None
        self._jobs = itertools.count(1)

    # -- process lifetime ---------------------------------------------------------------------------
    def start(self, warm: bool = False) -> None:
        """Start the engine process if it is not running; warm=True also imports torch there."""
        with self._lock:
            if self._process is not None and self._process.is_alive():
                return
            import multiprocessing

            from app.studio.engine_host import serve

            context = multiprocessing.get_context("spawn")
            parent_end, child_end = context.Pipe()
            process = context.Process(target=serve, args=(child_end,), name="kinemo-engine", daemon=True)
            process.start()
            child_end.close()
            self._process, self._conn = process, parent_end
            if warm:
                parent_end.send(("warm", None, None))

    def shutdown(self, timeout: float = 2.0) -> None:
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is None:
            return
        try:
            conn.send(("quit", None, None))
        except (OSError, ValueError):
            pass
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)
        conn.close()

    def _crashed(self) -> EngineCrashed:
        process = self._process
        code = process.exitcode if process is not None else None
        self.shutdown(timeout=0.5)
        return EngineCrashed(
            f"the engine process stopped unexpectedly (exit code {code}); it restarts with the next job"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    # -- jobs ---------------------------------------------------------------------------------------
    def generate(self, request, should_stop: Callable[[], bool] | None = None, options=None) -> Iterator:
        """Yield the backend's events for request; raise what the backend raised (Cancelled on stop).

        options: the run's RunOptions (memory setting, int8 weights, ONNX temporal attention)."""
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
                elif kind == "error":
                    settled = True
                    raise payload
                elif kind == "done":
                    settled = True
                    return
        finally:
            if not settled and self._conn is conn:
                self._abandon(conn, job)

    def _abandon(self, conn, job: int) -> None:
        """The consumer stopped early: stop the job and wait until the engine is free again."""
        import time

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
        from engine.api.events import Loaded
        from engine.api.run_options import RunOptions
        from engine.backends.base import open_backend

        options = (options or RunOptions()).validate()
        key = (request.model, *options.backend_key)
        backend = self._backends.get(key) or open_backend(request.model, options)
        for event in backend.generate(request, should_stop=should_stop, memory=options.memory):
            if isinstance(event, Loaded):
                self._backends[key] = backend
            yield event


_shared = None
_shared_lock = threading.Lock()


def shared_engine():
    """The process-wide engine (KINEMO_ENGINE=thread picks ThreadEngine); shut down at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import atexit

            _shared = ThreadEngine() if os.environ.get(ENGINE_ENV) == "thread" else ProcessEngine()
            atexit.register(_shared.shutdown)
        return _shared
