"""A loopback Hugging Face Hub for tests: huggingface-hub downloads from it over real HTTP.

It speaks what snapshot_download and hf_hub_download use (huggingface_hub 1.x/2.x):
  GET  /api/models/{repo}/revision/{rev}        model info: id, sha, siblings, gated
  GET  /api/models/{repo}/tree/{rev}?recursive  the files: path, size, oid, lfs {oid, size, pointerSize}
  HEAD /{repo}/resolve/{rev}/{path}             metadata: X-Repo-Commit, ETag, Content-Length; for LFS
                                                files a 302 to the "CDN" with X-Linked-Etag and X-Linked-Size
  GET  /{repo}/resolve/{rev}/{path}             a git file's bytes (Range honoured), an LFS file's 302
  GET  /{repo}/{commit}/{path} on the CDN       an LFS file's bytes (Range honoured; 206 + Content-Range)
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) as the hub's do.
A gated repository answers 401 without a token and 403 with a wrong one, on resolve only (its info and
file list are public, as on the hub). The CDN is a second server on another loopback port, so
huggingface-hub treats it as another origin: it stops at the 302 and sends no token there.

Both servers listen on 127.0.0.1 only, answer at most max_requests requests (then 400, counted in
refused), and stop when the `serve_hub` context ends. `serve_hub` also points huggingface-hub at
them (constants monkeypatched: ENDPOINT, the resolve URL template, a private cache and token file,
online) and refuses any socket connection to a non-loopback address while it runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".onnx", ".gguf", ".msgpack", ".h5")
MAX_REQUESTS = 300
SOCKET_TIMEOUT_S = 10  # a client that stops reading cannot hold a handler thread longer

_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/(?P<rev>[0-9a-f]{40})/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class HubFile:
    path: str
    data: bytes

    @property
    def lfs(self) -> bool:
        return self.path.endswith(LFS_SUFFIXES)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def oid(self) -> str:
        """The git blob id: of the file itself, or of its LFS pointer."""
        return _git_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        """What huggingface-hub names the cached blob after: sha256 for LFS files, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.oid


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile]
    token: str | None = None  # gated: resolve needs "Authorization: Bearer <token>"

    @property
    def sha(self) -> str:
        digest = hashlib.sha1(self.repo_id.encode())
        for path in sorted(self.files):
            digest.update(f"{path}\0{self.files[path].oid}\0".encode())
        return digest.hexdigest()

    @property
    def largest(self) -> HubFile:
        return max(self.files.values(), key=lambda f: len(f.data))


@dataclass(frozen=True)
class Seen:
    """One request either server answered."""

    server: str  # "hub" or "cdn"
    method: str
    path: str  # the URL path, unquoted
    repo_id: str | None
    filename: str | None
    range: str | None
    authorization: str | None
    status: int
    sent: int  # body bytes written


@dataclass
class _Hooks:
    cuts: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # next GETs: close after N bytes
    on_get: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)  # once, before the body


class FakeHub:
    """State shared by the hub and CDN servers: repositories, hooks, and every request seen."""

    def __init__(self, root: Path, max_requests: int = MAX_REQUESTS):
        self.root = Path(root)
        self.max_requests = max_requests
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[Seen] = []
        self.refused = 0
        self._hooks = _Hooks()
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.url = self.cdn_url = ""
        self.cache: Path | None = None  # the hub cache serve_hub points huggingface-hub at

    # -- repositories and hooks ------------------------------------------------------------------
    def repo_folder(self, repo_id: str) -> Path:
        """The server's folder for a repository (save_pretrained into it, then add_repo)."""
        return self.root / repo_id.replace("/", "--")

    def add_repo(self, repo_id: str, source: Path | None = None, token: str | None = None) -> HubRepo:
        """Serve a folder as repo_id (source is copied into repo_folder first); token makes it gated."""
        folder = self.repo_folder(repo_id)
        if source is not None:
            shutil.copytree(source, folder, dirs_exist_ok=True)
        files = {
            p.relative_to(folder).as_posix(): HubFile(p.relative_to(folder).as_posix(), p.read_bytes())
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        repo = HubRepo(repo_id, files, token)
        with self._lock:
            self.repos[repo_id] = repo
        return repo

    def cut(self, repo_id: str, filename: str, after: int) -> None:
        """The next GET of the file's bytes sends its headers and `after` bytes, then closes the connection."""
        with self._lock:
            self._hooks.cuts.setdefault((repo_id, filename), []).append(after)

    def on_get(self, repo_id: str, filename: str, hook: Callable[[], None]) -> None:
        """Call hook (on the server thread) once, when a GET of the file's bytes is about to send them."""
        with self._lock:
            self._hooks.on_get[(repo_id, filename)] = hook

    def gets(self, repo_id: str, filename: str) -> list[Seen]:
        """The GETs that carried the file's bytes (or began to), in order."""
        with self._lock:
            return [
                s
                for s in self.requests
                if s.method == "GET" and s.repo_id == repo_id and s.filename == filename and s.status in (200, 206)
            ]

    def seen(self, server: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if server is None or s.server == server]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, role))
            server.daemon_threads = True
            self._servers.append(server)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"loopback-{role}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.url, self.cdn_url = (f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)
        self._servers, self._threads = [], []

    # -- answering (server threads) --------------------------------------------------------------
    def _admit(self) -> bool:
        with self._lock:
            if len(self.requests) + self.refused >= self.max_requests:
                self.refused += 1
                return False
            return True

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _take_cut(self, key) -> int | None:
        with self._lock:
            pending = self._hooks.cuts.get(key)
            return pending.pop(0) if pending else None

    def _take_hook(self, key) -> Callable[[], None] | None:
        with self._lock:
            return self._hooks.on_get.pop(key, None)


def _handler(hub: FakeHub, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: no thread waits on an idle keep-alive
        timeout = SOCKET_TIMEOUT_S
        server_version = "loopback-hub"

        def log_message(self, format, *args):  # noqa: A002 - the base class names it so
            pass

        def do_HEAD(self):
            self._answer(head=True)

        def do_GET(self):
            self._answer(head=False)

        # ------------------------------------------------------------------------------------
        def _answer(self, head: bool) -> None:
            self._repo_id = self._filename = None
            self._sent = 0
            if not hub._admit():
                self._send(400, {"X-Error-Message": "loopback hub: request budget spent"}, b"", head)
                return
            path = unquote(urlsplit(self.path).path)
            try:
                if role == "cdn":
                    self._cdn(path, head)
                else:
                    self._hub(path, head)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (a cancelled download)

        def _hub(self, path: str, head: bool) -> None:
            for pattern, answer in ((_INFO, self._info), (_TREE, self._tree), (_RESOLVE, self._resolve)):
                match = pattern.match(path)
                if match:
                    repo = hub.repos.get(match["repo"])
                    self._repo_id = match["repo"]
                    if repo is None:  # the hub says 401 to anonymous callers for a missing or private repo
                        self._error(401, "RepoNotFound", "Repository not found", head)
                    elif match["rev"] not in ("main", repo.sha):
                        self._error(404, "RevisionNotFound", f"Invalid rev id: {match['rev']}", head, repo)
                    else:
                        answer(repo, match, head)
                    return
            self._error(404, None, "not a path the loopback hub knows", head)

        def _info(self, repo: HubRepo, match, head: bool) -> None:
            info = {
                "_id": repo.sha[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "sha": repo.sha,
                "private": False,
                "disabled": False,
                "gated": "manual" if repo.token else False,
                "library_name": "diffusers",
                "tags": ["diffusers"],
                "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            }
            self._json(info, head, repo)

        def _tree(self, repo: HubRepo, match, head: bool) -> None:
            folders = sorted({str(Path(p).parent) for p in repo.files} - {"."})
            entries = [{"type": "directory", "oid": _git_oid(f.encode()), "size": 0, "path": f} for f in folders]
            for f in sorted(repo.files.values(), key=lambda f: f.path):
                entry = {"type": "file", "oid": f.oid, "size": len(f.data), "path": f.path}
                if f.lfs:
                    entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
                entries.append(entry)
            self._json(entries, head, repo)

        def _resolve(self, repo: HubRepo, match, head: bool) -> None:
            self._filename = match["path"]
            if repo.token is not None:
                sent = self.headers.get("Authorization")
                if sent is None:
                    message = (
                        f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                        "authenticated to access it. Please log in."
                    )
                    self._error(401, "GatedRepo", message, head, repo)
                    return
                if sent != f"Bearer {repo.token}":
                    message = f"Access to model {repo.repo_id} is restricted and you are not in the authorized list."
                    self._error(403, "GatedRepo", message, head, repo)
                    return
            file = repo.files.get(match["path"])
            if file is None:
                self._error(404, "EntryNotFound", f"{match['path']} does not exist", head, repo)
                return
            if file.lfs:  # the hub sends LFS files' bytes from its CDN, another origin
                headers = {
                    "Location": f"{hub.cdn_url}/{repo.repo_id}/{repo.sha}/{file.path}",
                    "X-Repo-Commit": repo.sha,
                    "ETag": f'"{file.oid}"',
                    "X-Linked-Etag": f'"{file.sha256}"',
                    "X-Linked-Size": str(len(file.data)),
                    "Content-Length": "0",
                }
                self._send(302, headers, b"", head)
                return
            self._bytes(file, head, {"X-Repo-Commit": repo.sha, "ETag": f'"{file.etag}"'})

        def _cdn(self, path: str, head: bool) -> None:
            match = _CDN.match(path)
            repo = hub.repos.get(match["repo"]) if match else None
            file = repo.files.get(match["path"]) if repo is not None and match["rev"] == repo.sha else None
            if file is None:
                self._send(404, {}, b"no such object", head)
                return
            self._repo_id, self._filename = repo.repo_id, file.path
            self._bytes(file, head, {"ETag": f'"{file.sha256}"'})

        # ------------------------------------------------------------------------------------
        def _bytes(self, file: HubFile, head: bool, headers: dict) -> None:
            data, status = file.data, 200
            headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            wanted = self.headers.get("Range")
            if wanted:
                match = _RANGE.match(wanted.strip())
                start = int(match[1]) if match else len(data)
                end = min(int(match[2]), len(data) - 1) if match and match[2] else len(data) - 1
                if start >= len(data) or start > end:
                    self._send(416, {**headers, "Content-Range": f"bytes */{len(data)}"}, b"", head)
                    return
                status, data = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{len(file.data)}"
            if head:
                self._send(status, {**headers, "Content-Length": str(len(data))}, b"", head=True)
                return
            key = (self._repo_id, file.path)
            hook = hub._take_hook(key)
            if hook is not None:
                hook()
            cut = hub._take_cut(key)
            if cut is None:
                self._send(status, headers, data, head=False)
                return
            # the full length is promised, part of it arrives, then the connection closes
            self._send(status, {**headers, "Content-Length": str(len(data))}, data[:cut], head=False)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _json(self, value, head: bool, repo: HubRepo) -> None:
            body = json.dumps(value).encode()
            self._send(200, {"Content-Type": "application/json", "X-Repo-Commit": repo.sha}, body, head)

        def _error(self, status: int, code: str | None, message: str, head: bool, repo: HubRepo | None = None):
            headers = {"X-Error-Message": message, "Content-Type": "application/json"}
            if code:
                headers["X-Error-Code"] = code
            if repo is not None:
                headers["X-Repo-Commit"] = repo.sha
            self._send(status, headers, json.dumps({"error": message}).encode(), head)

        def _send(self, status: int, headers: dict, body: bytes, head: bool) -> None:
            self.send_response(status)
            headers = {"Content-Length": str(len(body)), **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                if not head and body:
                    self.wfile.write(body)
                    self._sent = len(body)
                    self.wfile.flush()
            finally:
                hub._record(
                    Seen(
                        role,
                        self.command,
                        unquote(urlsplit(self.path).path),
                        self._repo_id,
                        self._filename,
                        self.headers.get("Range"),
                        self.headers.get("Authorization"),
                        status,
                        self._sent,
                    )
                )

    return Handler


def _loopback_only(monkeypatch) -> None:
    """Any socket connection to an address that is not loopback raises instead of leaving the machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(sock, address) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        try:
            loopback = ipaddress.ip_address(address[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConnectionRefusedError(f"the loopback hub test refuses to contact {address[0]!r}")

    def connect(sock, address):
        allowed(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        allowed(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@contextlib.contextmanager
def serve_hub(tmp_path: Path, monkeypatch, max_requests: int = MAX_REQUESTS) -> Iterator[FakeHub]:
    """A running FakeHub that huggingface-hub in this process downloads from, with a private HF_HOME.

    huggingface_hub.constants reads HF_ENDPOINT once, at import, so the endpoint and the resolve URL
    template are patched there (HfApi and hf_hub_url read them at call time); the environment gets
    HF_ENDPOINT and HF_HOME too, for a subprocess.
    """
    from huggingface_hub import constants

    home = Path(tmp_path) / "hf-home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    hub = FakeHub(Path(tmp_path) / "hub-repos", max_requests).start()
    try:
        _loopback_only(monkeypatch)
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(home))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(constants, "HF_HOME", str(home))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_XET_CACHE", str(home / "xet"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        hub.cache = cache
        yield hub
    finally:
        hub.stop()
    if hub.refused:
        raise AssertionError(f"the loopback hub refused {hub.refused} requests over its budget of {max_requests}")
