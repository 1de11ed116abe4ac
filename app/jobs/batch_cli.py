"""`kinemo batch JOBS -o DIR`: every request of a JSON Lines file rendered into DIR, resumably.

1. The JOBS file is read and validated whole (app.jobs.jobs_file): a bad line is one line, exit status 2, before
   any work. 2. The journal (app.jobs.journal) says which jobs an earlier run finished; those are skipped.
3. The rest run here (app.jobs.runner) or on Ray (app.jobs.ray_runner), each journaled as it ends, a progress bar
   over the jobs on stderr. Exit status 0 when every job is done, 1 when some failed (their one-line errors are in
   the journal and on stderr), 130 (or 128 + the signal) when stopped: the same command later finishes the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli_args import UsageError
from app.jobs.journal import Journal, state_folder

EXIT_FAILED = 1
EXIT_CANCELLED = 130


class BatchRun:
    """One run of a batch: its journal, its progress bar and its tally."""

    def __init__(self, output: Path, total: int, journal: Journal):
        from tqdm import tqdm

        self.output = output
        self.journal = journal
        self.bar = tqdm(total=total, desc="jobs", unit="job", file=sys.stderr, dynamic_ncols=True)
        self.failures: list[str] = []
        self.finished: list[str] = []

    def checkpoint_dir(self, job) -> Path:
        """The job's own folder for a long clip's resumable state (RunOptions.checkpoint_dir)."""
        return state_folder(self.output) / "checkpoints" / job.key

    def skip(self, job) -> None:
        self.finished.append(job.file_name)
        self.bar.update(1)

    def done(self, job, stats: dict) -> None:
        self.journal.done(job.key, job.name, job.file_name, stats)
        self.finished.append(job.file_name)
        self.bar.update(1)

    def failed(self, job, error: str) -> None:
        self.journal.failed(job.key, job.name, job.file_name, error)
        self.failures.append(job.name)
        self.say(f"{job.name} (line {job.line}) failed: {error}")
        self.bar.update(1)

    def say(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def run_batch(args: argparse.Namespace) -> int:
    from app.cli_args import run_options
    from app.jobs.jobs_file import BatchSettings, read_jobs

    # 1. validate everything before any work: the flags, the folder, every line of JOBS
    fmt = args.format or "mp4"
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.ray is None and args.workers is not None:
        raise UsageError("--workers says how many Ray workers render; add --ray")
    if args.stats is not None:
        raise UsageError("--stats is generate's; a batch keeps each job's stats in its journal")
    ray = ray_module() if args.ray is not None else None
    settings = BatchSettings(run_options(args), fmt, args.quality, args.audio, args.fast)
    output = Path(args.output).expanduser()
    if output.exists() and not output.is_dir():
        raise UsageError(f"the output must be a folder: {output} is a file")
    opened: dict = {}
    jobs = read_jobs(args.jobs, settings, opened)
    checked_folder(output)

    # 2. what an earlier run finished stays as it is
    journal = Journal(output)
    batch = BatchRun(output, len(jobs), journal)
    pending = []
    for job in jobs:
        if journal.is_done(job.key, job.file_name):
            batch.skip(job)
        else:
            pending.append(job)
    if len(pending) < len(jobs):
        batch.say(f"{len(jobs) - len(pending)} of {len(jobs)} jobs were finished by an earlier run; skipped")

    # 3. the rest, here or on Ray
    try:
        if ray is None:
            from app.jobs.runner import run_local

            run_local(pending, output, settings, batch, opened)
        else:
            from app.jobs.ray_runner import run_on_ray

            run_on_ray(ray, pending, output, settings, batch, address=args.ray, workers=args.workers)
    except KeyboardInterrupt as stop:
        batch.close()
        signum = getattr(stop, "signum", None)
        print(
            f"kinemo: batch stopped; {len(batch.finished)} of {len(jobs)} jobs are done and journaled, "
            "the same command finishes the rest",
            file=sys.stderr,
        )
        return 128 + signum if signum else EXIT_CANCELLED
    batch.close()
    return summary(batch, jobs)


def summary(batch: BatchRun, jobs: list) -> int:
    for name in batch.finished:
        print(batch.output / name)
    done = len(jobs) - len(batch.failures)
    line = f"kinemo: {done} of {len(jobs)} jobs done in {batch.output}"
    if batch.failures:
        print(f"{line}; failed: {', '.join(batch.failures)} (see {batch.journal.path})", file=sys.stderr)
        return EXIT_FAILED
    print(line, file=sys.stderr)
    return 0


def checked_folder(path: Path) -> Path:
    """The output folder, made if needed; UsageError when it cannot be."""
    import os

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make the output folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"the output folder is read-only: {path}")
    return path


def ray_module():
    """Ray, an optional extra: without it, --ray says how to get it (exit status 2)."""
    try:
        import ray
    except ImportError:
        raise UsageError('--ray needs Ray: pip install "kinemo[cluster]"') from None
    return ray
