"""The engine's own process: receives requests over a pipe, runs the backend, sends events back.

The studio starts it as `python -m app.studio.engine_host` (never through multiprocessing's spawn, which
re-imports the caller's __main__ and so re-runs any script that builds a window without a main guard).
Messages are multiprocessing.connection messages (length-prefixed pickles) over the process's stdin and
stdout; the engine's own output goes to stderr, so nothing a library prints can corrupt the pipe.

Running the engine in a child process keeps torch out of the studio's process entirely, so neither
importing torch (which holds the GIL for ~0.2 s) nor loading weights can stall the UI thread.
Loaded backends stay cached here across jobs.

Messages, parent -> child: ("generate", job, {"request": request_dict, "options": run_options_dict}),
("stop", job), ("warm", None), ("quit", None)
Messages, child -> parent: ("ready", None, {"pid": pid}) first of all (the studio's start-up check),
("inputs", job, request_dict) once the request's inputs are read and fingerprinted (pictures, videos, LoRAs:
engine.backends.inputs.fingerprinted), ("event", job, engine event), ("error", job, engine exception),
("done", job, None);
events and exceptions travel as the engine's own classes (pickled), so the studio tells them apart by type.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass


@dataclass
class InputsRead:
    """Not an engine event: the job's request with the SHA-256 of every input it reads, as the engine read them
    (a hub LoRA is downloaded for it); the history and exports record this one."""

    request: object  # GenerationRequest


class PipeConnection:
    """One two-way message channel over two one-way pipes: received from reader, sent to writer."""

    def __init__(self, read_fd: int, write_fd: int):
        from multiprocessing.connection import Connection

        self._reader = Connection(read_fd, writable=False)
        self._writer = Connection(write_fd, readable=False)

    def send(self, message) -> None:
        self._writer.send(message)

    def recv(self):
        return self._reader.recv()

    def poll(self, timeout: float = 0.0) -> bool:
        return self._reader.poll(timeout)

    def close(self) -> None:
        for end in (self._reader, self._writer):
            try:
                end.close()
            except OSError:
                pass


class _Inbox:
    """Messages from the parent; a "stop" for the running job is noted, anything else is kept for later."""

    def __init__(self, conn):
        self.conn = conn
        self.pending: deque = deque()
        self.stopped: set = set()

    def _take(self, message) -> None:
        kind, job = message[0], message[1]
        if kind == "stop":
            self.stopped.add(job)
        elif kind == "quit":
            raise SystemExit(0)
        else:
            self.pending.append(message)

    def drain(self) -> None:
        while self.conn.poll():
            self._take(self.conn.recv())

    def next(self):
        while not self.pending:
            self._take(self.conn.recv())
        return self.pending.popleft()


def _run_job(conn, inbox: _Inbox, backends: dict, job: int, payload: dict) -> None:
    from engine.api.errors import Cancelled
    from engine.api.events import Loaded
    from engine.api.request import GenerationRequest
    from engine.api.run_options import RunOptions
    from engine.backends.base import for_run, open_backend
    from engine.backends.inputs import fingerprinted

    def should_stop() -> bool:
        inbox.drain()
        return job in inbox.stopped

    options = RunOptions.from_dict(payload["options"])
    request = fingerprinted(GenerationRequest.from_dict(payload["request"]), options.token)
    conn.send(("inputs", job, request.to_dict()))
    key = (request.model, *options.backend_key)
    backend = for_run(backends.get(key) or open_backend(request.model, options), options)
    events = backend.generate(request, should_stop=should_stop, memory=options.memory)
    try:
        for event in events:
            conn.send(("event", job, event))
            if isinstance(event, Loaded):
                backends[key] = backend  # cache only what loaded
            if should_stop():
                raise Cancelled("generation cancelled")
    finally:
        events.close()


def reported(exc: BaseException):
    """What goes back to the studio for a failed job: the engine's own exception as it is (its class survives
    pickling), anything else as a KinemoError that names it, in one line."""
    import pickle

    from engine.api.errors import KinemoError

    text = str(exc).strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, KinemoError):
        try:
            pickle.loads(pickle.dumps(exc))
            return type(exc)(message)
        except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as text
            pass
    return KinemoError(f"the engine failed ({type(exc).__name__}): {message}")


def serve(conn) -> None:
    """Answer the studio's messages on conn until it quits or goes away."""
    from engine.backends.threads import idle_threads_sleep

    idle_threads_sleep()  # before the warm-up or a job imports torch (engine.backends.threads)
    backends: dict = {}
    inbox = _Inbox(conn)
    try:
        conn.send(("ready", None, {"pid": os.getpid()}))
        while True:
            kind, job, payload = inbox.next()
            if kind == "warm":
                import torch  # noqa: F401 - pay for the import before the first job

                continue
            if kind != "generate":
                continue
            try:
                _run_job(conn, inbox, backends, job, payload)
            except SystemExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - every failure goes back as a message
                conn.send(("error", job, reported(exc)))
            else:
                conn.send(("done", job, None))
            inbox.stopped.discard(job)
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt, SystemExit):
        pass  # the studio went away or asked us to quit


def main() -> int:
    """`python -m app.studio.engine_host`: the pipe is stdin and stdout; stdout itself then points at stderr."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # prints from libraries land on stderr, not in the message stream
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    sys.stdout = sys.stderr
    conn = PipeConnection(read_fd, write_fd)
    try:
        serve(conn)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
