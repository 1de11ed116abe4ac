"""The server's jobs: a queue run one job at a time by a worker thread that keeps the loaded backend between jobs.

Each job keeps its events (JSON-ready dicts, in order) for every listener of its event stream, its progress and
its state: queued -> running -> done | failed | cancelled. A cancelled queued job never runs; a running one stops
at its next step (render_clip's should_stop), its writer aborted, so a cancelled or failed job has no result.
Results live in the job's folder under the server's temporary root.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from app.serve.job_request import JobSpec

FINAL_STATES = ("done", "failed", "cancelled")
STOP_WAIT_SECONDS = 60.0  # how long the server's shutdown waits for a running job to reach its next step


@dataclass
class Job:
    id: str
    spec: JobSpec
    folder: Path
    output: Path
    state: str = "queued"
    step: int = 0
    total: int = 0
    error: str | None = None
    stats: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    started: float | None = None  # time.time() when the worker took it up
    ended: float | None = None  # ... and when it reached its final state
    events: list = field(default_factory=list)  # [(kind, data dict)] in the order they happened
    stop: threading.Event = field(default_factory=threading.Event)
    last_preview: int = 0  # the step of the last preview sent

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def summary(self) -> dict:
        request = self.spec.request
        return {
            "id": self.id,
            "state": self.state,
            "progress": {"step": self.step, "total": self.total},
            "error": self.error,
            "prompt": request.prompt,
            "model": request.model,
            "format": self.spec.settings.format,
            "created": self.created,
            "started": self.started,
            "ended": self.ended,
            "stats": self.stats,
            "result": f"/v1/jobs/{self.id}/result" if self.state == "done" else None,
        }


class JobQueue:
    """Jobs by id, in the order they came; one worker thread runs them one at a time."""

    def __init__(self, options, root: Path, preview_every: int = 5):
        self.options = options  # engine.api.run_options.RunOptions: how every job runs
        self.root = Path(root)
        self.preview_every = max(1, preview_every)
        self._jobs: dict[str, Job] = {}
        self._pending: list[str] = []
        self._changed = threading.Condition()  # guards the jobs and their events; notified on every change
        self._closing = False
        self._backend = None
        self._backend_key: tuple | None = None
        self._thread = threading.Thread(target=self._work, name="kinemo-serve-worker", daemon=True)

    # -- the HTTP side --------------------------------------------------------------------------------
    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its folder (the job's pictures go there before it is queued)."""
        job_id = uuid.uuid4().hex
        return job_id, self.root / job_id

    def submit(self, job_id: str, folder: Path, spec: JobSpec) -> Job:
        from export.formats import EXTENSIONS

        job = Job(job_id, spec, folder, folder / f"result{EXTENSIONS[spec.settings.format]}")
        with self._changed:
            self._jobs[job_id] = job
            self._pending.append(job_id)
            self._add(job, "queued", job.summary())
        return job

    def get(self, job_id: str) -> Job | None:
        with self._changed:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._changed:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; a finished one is forgotten and its files removed. None if unknown."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                self._pending.remove(job_id)
                self._finish(job, "cancelled")
            elif job.state == "running":
                job.stop.set()  # render_clip stops at the next step; the worker records the state
            else:
                del self._jobs[job_id]
                shutil.rmtree(job.folder, ignore_errors=True)
            return job

    def events_after(self, job: Job, after: int, timeout: float) -> list:
        """The job's events after index `after` ([(index, kind, data)]), waiting up to timeout for one."""
        with self._changed:
            if len(job.events) <= after + 1 and not job.finished:
                self._changed.wait(timeout)
            return [(i, *job.events[i]) for i in range(after + 1, len(job.events))]

    # -- lifetime -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Cancel every job, wait for the running one to stop and give the backend's memory back."""
        with self._changed:
            self._closing = True
            for job_id in list(self._pending):
                self.cancel(job_id)
            for job in self._jobs.values():
                job.stop.set()
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT_SECONDS)
        if self._backend is not None:
            self._backend.release()
            self._backend = None

    # -- the worker -----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closing:
                    self._changed.wait()
                if self._closing:
                    return
                job = self._jobs[self._pending.pop(0)]
                job.state, job.started = "running", time.time()
                self._add(job, "running", job.summary())
            self._run(job)

    def _run(self, job: Job) -> None:
        from app.jobs.render import render_clip
        from app.serve.stream import event_data
        from engine.api.errors import Cancelled, KinemoError
        from export.formats import ExportError

        def on_event(event) -> None:
            with self._changed:
                for kind, data in event_data(event, job, self.preview_every):
                    self._add(job, kind, data)

        spec = job.spec
        try:
            backend = self._backend_for(spec.request.model)
            stats = render_clip(
                backend,
                spec.request,
                job.output,
                spec.settings,
                quality=spec.quality,
                audio=spec.audio,
                on_event=on_event,
                should_stop=job.stop.is_set,
                provenance=spec.provenance,
            )
        except Cancelled:
            self._finish(job, "cancelled")
        except (KinemoError, ExportError) as exc:
            self._finish(job, "failed", str(exc))
        except Exception as exc:  # a bug or a broken model: the job fails, the server goes on
            traceback.print_exc(file=sys.stderr)
            self._finish(job, "failed", f"{type(exc).__name__}: {exc}")
        else:
            job.stats = {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}
            self._finish(job, "done")

    def _backend_for(self, model: str):
        """The kept backend when the model and the run options are the same; else a fresh one (the old one's
        memory given back first: one model at a time)."""
        from engine.backends.base import for_run, open_backend

        key = (model, *self.options.backend_key)
        if key != self._backend_key:
            if self._backend is not None:
                self._backend.release()
            self._backend, self._backend_key = None, None
            self._backend = open_backend(model, self.options)
            self._backend_key = key
        return for_run(self._backend, self.options)

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        with self._changed:
            job.state, job.error, job.ended = state, error, time.time()
            if state != "done":
                job.output.unlink(missing_ok=True)
            self._add(job, state, job.summary())

    def _add(self, job: Job, kind: str, data: dict) -> None:
        """Record an event (lock held) and wake the listeners."""
        job.events.append((kind, data))
        self._changed.notify_all()
