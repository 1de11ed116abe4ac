"""A client of `kinemo serve` on the standard library alone (urllib): submit, follow, fetch and cancel jobs.

The studio's remote engine, the bench and the tests use it. An HTTP error is a ServeError carrying the status and
the server's one-line detail.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from engine.api.errors import KinemoError

READ_TIMEOUT_SECONDS = 60.0  # the server sends a keep-alive comment every 15 s on an idle event stream


class ServeError(KinemoError):
    """The server refused a call (status) or could not be reached (status 0)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


def file_data(path: str | Path) -> str:
    """A file's bytes in base64, as a job's image_data, last_image_data, video_data or extends_data takes them."""
    return base64.b64encode(Path(path).expanduser().read_bytes()).decode("ascii")


class ServeClient:
    def __init__(self, url: str, token: str, timeout: float = READ_TIMEOUT_SECONDS):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- calls ----------------------------------------------------------------------------------------
    def submit(self, job: dict) -> dict:
        """Queue a job (a request's fields, plus format/quality/audio and base64 *_data files); its summary."""
        return self._json("POST", "/v1/jobs", json.dumps(job).encode())

    def jobs(self) -> list[dict]:
        return self._json("GET", "/v1/jobs")["jobs"]

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self._json("DELETE", f"/v1/jobs/{job_id}")

    def result(self, job_id: str, path: str | Path | None = None) -> bytes:
        """The finished clip's bytes (also written to path when given)."""
        with self._open("GET", f"/v1/jobs/{job_id}/result") as response:
            data = response.read()
        if path is not None:
            from engine.util.files import atomic_write_bytes

            atomic_write_bytes(Path(path), data)
        return data

    def events(self, job_id: str, after: int = -1) -> Iterator[tuple[str, dict]]:
        """(kind, data) for each of the job's events after index `after`, as they come, until its final state."""
        headers = {"Accept": "text/event-stream"}
        if after >= 0:
            headers["Last-Event-ID"] = str(after)
        with self._open("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
            kind, lines = "message", []
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    lines.append(line[5:].removeprefix(" "))
                elif not line and lines:  # a blank line ends an event
                    yield kind, json.loads("\n".join(lines))
                    kind, lines = "message", []

    # -- plumbing -------------------------------------------------------------------------------------
    def _json(self, method: str, path: str, body: bytes | None = None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        with self._open(method, path, body, headers) as response:
            return json.loads(response.read())

    def _open(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise ServeError(exc.code, _detail(exc.read()) or f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServeError(0, f"cannot reach the Kinemo server at {self.url}: {reason}") from None


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip()
    return detail if isinstance(detail, str) else json.dumps(detail)
