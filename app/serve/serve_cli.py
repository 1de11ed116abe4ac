"""`kinemo serve`: the engine over HTTP (app.serve.api) with uvicorn, until Ctrl+C or SIGTERM.

The bearer token is KINEMO_TOKEN, or one made with secrets and printed with the URL; results live in a temporary
folder of the server's own, removed when it stops.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

TOKEN_ENV = "KINEMO_TOKEN"
GRACEFUL_SECONDS = 2  # open event streams get this long to end when the server stops


def run_serve(args) -> int:
    import secrets

    from app.cli_args import UsageError

    try:  # the serve extra: a plain `pip install kinemo` has neither
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise UsageError('kinemo serve needs FastAPI and uvicorn: pip install "kinemo[serve]"') from None
    from app.serve.api import create_app
    from app.serve.jobs import JobQueue
    from app.serve.serve_args import run_options

    # 1. the flags, the run options and the listening socket: bad ones end here in one line
    if args.max_body_mb <= 0:
        raise UsageError(f"--max-body-mb must be above 0, got {args.max_body_mb:g}")
    if args.preview_every < 1:
        raise UsageError(f"--preview-every must be at least 1, got {args.preview_every}")
    options = run_options(args)
    given = os.environ.get(TOKEN_ENV, "").strip()
    token = given or secrets.token_urlsafe(32)
    sock = listening_socket(args.host, args.port)

    # 2. serve until stopped; the jobs' folder goes with the server
    with tempfile.TemporaryDirectory(prefix="kinemo-serve-") as root:
        queue = JobQueue(options, Path(root), args.preview_every)
        queue.start()
        host, port = sock.getsockname()[:2]
        print(f"kinemo serve: http://{_url_host(host)}:{port}  (API description at /openapi.json)", flush=True)
        print(f"token: {'from ' + TOKEN_ENV if given else token}", flush=True)
        app = create_app(queue, token, max_body=int(args.max_body_mb * 2**20))
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SECONDS)
        previous = stop_quietly()
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn raises a captured Ctrl+C, SIGTERM or SIGHUP again once it has stopped
            pass
        finally:
            queue.close()
            sock.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    print("kinemo serve: stopped", file=sys.stderr)
    return 0


def stop_quietly() -> dict:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl+C does, so the jobs' folder is removed whichever
    stops the server (uvicorn captures them while it runs, then raises them again under these handlers).
    Returns the handlers it replaced."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    if threading.current_thread() is not threading.main_thread():
        return {}  # signals reach the main thread only: a server run from another thread is stopped otherwise
    return {getattr(signal, name): signal.signal(getattr(signal, name), stop) for name in names}


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (0: a free port), or UsageError in one line."""
    from app.cli_args import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class ServerThread:
    """`kinemo serve` inside this process, on a thread (the bench and the tests): `with ServerThread(options) as
    served:` serves on a free loopback port at served.url with served.token until the block ends."""

    def __init__(self, options, root: Path, token: str = "", max_body: int = 64 << 20, preview_every: int = 5):
        import secrets

        from app.serve.jobs import JobQueue

        self.token = token or secrets.token_urlsafe(32)
        self.queue = JobQueue(options, Path(root), preview_every)
        self.max_body = max_body
        self.url = ""
        self._server = self._thread = self._sock = None

    def __enter__(self) -> ServerThread:
        import time

        import uvicorn

        from app.serve.api import create_app

        self.queue.start()
        self._sock = listening_socket("127.0.0.1", 0)
        app = create_app(self.queue, self.token, self.max_body)
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server thread did not start")
            time.sleep(0.02)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.queue.close()
        self._sock.close()

    def client(self, token: str | None = None):
        from app.serve.client import ServeClient

        return ServeClient(self.url, self.token if token is None else token, timeout=120)
