"""The engine's own process: receives requests over a pipe, runs the backend, sends events back.

Running the engine in a child process keeps torch out of the studio's process entirely, so neither
importing torch (which holds the GIL for ~0.2 s) nor loading weights can stall the UI thread.
Loaded backends stay cached here across jobs.

Messages, parent -> child: ("generate", job, {"request": request_dict, "options": run_options_dict}) (a bare
request dict is taken too, with default options), ("stop", job), ("warm", None), ("quit", None)
Messages, child -> parent: ("event", job, engine event), ("error", job, (class name, message)), ("done", job, None)
"""

from __future__ import annotations

from collections import deque


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
    from engine.backends import generate_planned, resolve_backend
    from engine.errors import Cancelled
    from engine.request import GenerationRequest
    from engine.run_options import RunOptions

    def should_stop() -> bool:
        inbox.drain()
        return job in inbox.stopped

    request_dict, options = (payload["request"], payload.get("options", {})) if "request" in payload else (payload, {})
    request, options = GenerationRequest.from_dict(request_dict), RunOptions.from_dict(options)
    key = (request.model, *options.backend_key)
    backend = backends.get(key)
    if backend is None:
        backend = resolve_backend(
            request.model, quantize=options.quantize, onnx_temporal=options.onnx_temporal, memory=options.memory
        )
    events = generate_planned(backend, request, should_stop=should_stop, memory=options.memory)
    try:
        for event in events:
            conn.send(("event", job, event))
            if type(event).__name__ == "Loaded":
                backends[key] = backend  # cache only what loaded
            if should_stop():
                raise Cancelled("generation cancelled")
    finally:
        events.close()


def serve(conn) -> None:
    """Entry point of the engine process."""
    backends: dict = {}
    inbox = _Inbox(conn)
    try:
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
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                conn.send(("error", job, (type(exc).__name__, message)))
            else:
                conn.send(("done", job, None))
            inbox.stopped.discard(job)
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt, SystemExit):
        pass  # the studio went away or asked us to quit
