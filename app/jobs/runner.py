"""Running a batch's jobs: one job rendered with a kept backend (shared by the local runner and the Ray workers),
and the local runner, one job after another in this process.

Loaded backends are kept between jobs: the same model with the same options reuses its backend (loaded once).
One is kept loaded at a time, since a second model would double the memory; the runners order the jobs by model,
so each model loads once.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from app.jobs.jobs_file import BatchSettings, Job


class Backends:
    """Backends by (model, RunOptions.backend_key), the last one used kept loaded."""

    def __init__(self, opened: dict | None = None):
        self.opened = dict(opened or {})  # (model, backend_key) -> Backend, from validating the JOBS file
        self.loaded_key: tuple | None = None

    def get(self, model: str, options):
        from engine.backends.base import for_run, open_backend

        key = (model, options.backend_key)
        if self.loaded_key is not None and self.loaded_key != key and self.loaded_key in self.opened:
            self.opened.pop(self.loaded_key).release()  # its memory, before the next model loads
        if key not in self.opened:
            self.opened[key] = open_backend(model, options)
        self.loaded_key = key
        return for_run(self.opened[key], options)

    def release(self) -> None:
        for backend in self.opened.values():
            backend.release()
        self.opened.clear()


def render_job(
    backends: Backends,
    job: Job,
    output: Path,
    settings: BatchSettings,
    checkpoint_dir: Path | None,
    *,
    request=None,
    on_event: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Render job into output (a file, or a folder of PNG frames) with a kept backend; its stats. request: the
    job's request with its inputs at other paths (a worker's copies); the file records the job's own. should_stop:
    a studio's Cancel, seen by the backend at its next step (Cancelled raised, nothing written)."""
    from app.jobs.render import render_clip
    from export import ExportSettings

    request = request or job.request
    options = replace(settings.options, checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None)
    backend = backends.get(request.model, options)
    backend.check(request)  # the kept backend's per-run options, admitted again
    export = ExportSettings(job.format, request.fps, request.width, request.height, settings.quality).validate()
    if job.format == "png" and output.is_dir():  # a job redone: its frames start from an empty folder
        shutil.rmtree(output)
    stats = render_clip(
        backend,
        request,
        output,
        export,
        quality=settings.quality,
        audio=settings.audio,
        on_event=on_event,
        should_stop=should_stop,
        provenance=job.request.to_dict(),
    )
    if checkpoint_dir is not None:  # finished: the checkpoint is spent
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return stats


def one_line(exc: BaseException) -> str:
    """A failure in one line: the engine's own messages as they are, anything else with its kind."""
    from engine.api.errors import KinemoError
    from export.formats import ExportError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (KinemoError, ExportError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def by_model(jobs: list[Job]) -> list[Job]:
    """jobs grouped by model (in the order each model first appears), so each model loads once."""
    first: dict[str, int] = {}
    for job in jobs:
        first.setdefault(job.request.model, len(first))
    return sorted(jobs, key=lambda job: first[job.request.model])


def run_local(jobs: list[Job], output: Path, settings: BatchSettings, batch, opened: dict | None = None) -> None:
    """Render jobs one after another in this process; batch (app.jobs.batch_cli.BatchRun) journals each one."""
    from engine.api.events import MemoryNotice, Notice

    backends = Backends(opened)
    try:
        for job in by_model(jobs):

            def show(event, job=job) -> None:
                if isinstance(event, Notice) and not isinstance(event, MemoryNotice):
                    batch.say(f"{job.name}: {event.message}")

            try:
                stats = render_job(
                    backends, job, output / job.file_name, settings, batch.checkpoint_dir(job), on_event=show
                )
            except Exception as exc:  # one failed job is recorded; the others go on
                batch.failed(job, one_line(exc))
            else:
                batch.done(job, stats)
    finally:
        backends.release()
