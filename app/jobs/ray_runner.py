"""A batch on Ray (`kinemo batch --ray [ADDRESS]`): workers are actors that keep their model loaded between jobs.

Jobs whose model needs a GPU (a diffusers model, unless --device cpu) go to workers that hold one (num_gpus=1);
the bundled model's go to CPU workers. No filesystem is assumed shared: a job's pictures travel to the worker as
bytes, and its finished file comes back as bytes, written here atomically and journaled. A worker that dies (its
process killed, its machine gone) is replaced by a fresh one and its job is sent again, to another worker when one
is free, up to MAX_ATTEMPTS times. Retries are the runtime's business; the journal of finished work is ours.
A studio's queue (app.studio.cluster_engine) sends its jobs one at a time through render_one(), taking each job's
progress from its worker while it runs and stopping it on Cancel.
Ray is imported only by the functions that run a batch on it: it is an optional extra.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections import deque
from pathlib import Path

from app.jobs.batch_args import LOCAL
from app.jobs.jobs_file import INPUT_FIELDS, BatchSettings, Job

MAX_ATTEMPTS = 3  # a job whose worker dies this many times (e.g. it runs out of memory each time) is failed
POLL_SECONDS = 0.1  # how often render_one hands its caller the worker, for the job's events and a Cancel
STOP_GRACE_SECONDS = 60.0  # how long a stopped job may take to reach its next step before its worker is replaced
SPAWNED = itertools.count()  # workers started by this process, numbering their names


def pack(path: Path) -> dict[str, bytes]:
    """A file as {"": bytes}, a folder (PNG frames) as {name: bytes} of its files."""
    path = Path(path)
    if path.is_file():
        return {"": path.read_bytes()}
    return {part.name: part.read_bytes() for part in sorted(path.iterdir()) if part.is_file()}


def unpack(files: dict[str, bytes], path: Path) -> None:
    """Write what pack() made at path, whole or not at all: a file renamed into place, a folder filled under a
    temporary name and then renamed."""
    from engine.util.files import atomic_write_bytes

    if "" in files:
        atomic_write_bytes(path, files[""])
        return
    temp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    try:
        for name, data in files.items():
            (temp / name).write_bytes(data)
        if path.exists():
            shutil.rmtree(path)
        os.rename(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def job_inputs(job: Job) -> dict[str, dict[str, bytes]]:
    """The files the job's request reads, as bytes for a worker on another machine: {field: pack(path)}."""
    return {name: pack(Path(getattr(job.request, name))) for name in INPUT_FIELDS if getattr(job.request, name)}


class BatchWorker:
    """A Ray actor's body: renders jobs with its backends kept loaded between them. It runs two calls at once
    (max_concurrency=2), so a caller can take the running job's events or stop it while render() works."""

    def __init__(self, settings: BatchSettings):
        from app.jobs.runner import Backends

        self.settings = settings
        self.backends = Backends()
        self.job: str | None = None  # the name of the job in hand
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.shown: list = []  # the job in hand's events since take_events() last took them

    def pid(self) -> int:
        return os.getpid()

    def current(self) -> str | None:
        return self.job

    def stop(self) -> None:
        """Stop the job in hand at its next step (its render answers {"cancelled": ...})."""
        self.stopping.set()

    def take_events(self) -> list:
        """The job in hand's Progress, Preview (the latest only), Notice and Loaded events since the last call."""
        with self.lock:
            events, self.shown = self.shown, []
        return events

    def _keep(self, event) -> None:
        from engine.api.events import Loaded, Notice, Preview, Progress

        if not isinstance(event, (Progress, Preview, Notice, Loaded)):
            return  # the frames and the sound travel in the finished file
        with self.lock:
            if isinstance(event, Preview):  # an older preview nobody took is stale
                self.shown = [kept for kept in self.shown if not isinstance(kept, Preview)]
            self.shown.append(event)

    def render(self, job: Job, inputs: dict, checkpoint_dir: str | None, settings: BatchSettings | None = None):
        """{"files": pack(the finished file), "stats": ...}, {"error": one line} when the job fails, or
        {"cancelled": one line} when stop() stopped it. settings: this job's (a studio's run options), else the
        worker's."""
        from app.jobs.runner import one_line, render_job

        self.job = job.name
        self.stopping.clear()
        with self.lock:
            self.shown = []
        work = Path(tempfile.mkdtemp(prefix="kinemo-batch-job-"))
        try:
            changes = {}
            for name, files in inputs.items():  # the worker's copies of the job's pictures and clips
                copy = work / "inputs" / name / (Path(getattr(job.request, name)).name or name)
                copy.parent.mkdir(parents=True)
                unpack(files, copy)
                changes[name] = str(copy)
            request = job.request.with_changes(**changes)
            # a runtime on another machine keeps the checkpoint on the worker's own disk
            folder = Path(checkpoint_dir or Path(tempfile.gettempdir()) / "kinemo-batch-checkpoints" / job.key)
            target = work / job.file_name
            stats = render_job(
                self.backends,
                job,
                target,
                settings or self.settings,
                folder,
                request=request,
                on_event=self._keep,
                should_stop=self.stopping.is_set,
            )
            return {"files": pack(target), "stats": stats}
        except Exception as exc:  # the job's failure is the driver's to record; the worker goes on
            return {"cancelled" if self.stopping.is_set() else "error": one_line(exc)}
        finally:
            shutil.rmtree(work, ignore_errors=True)
            self.job = None


def connect(ray, address: str, workers: int | None, say) -> bool:
    """Ray ready to use: a runtime already started in this process, a local one started here (True: shut it
    down at the end), or the cluster at address (said first: an unreachable one takes Ray minutes to give up)."""
    from app.cli_args import UsageError

    if ray.is_initialized():
        return False
    say("starting a local Ray runtime" if address == LOCAL else f"joining the Ray cluster at {address}")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address == LOCAL:
            ray.init(address=None, include_dashboard=False, num_cpus=workers or os.cpu_count() or 1, **quiet)
            return True
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "start a local Ray runtime" if address == LOCAL else f"join the Ray cluster at {address}"
        raise UsageError(f"cannot {where}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}") from None
    return False


class Pool:
    """The workers of one kind (CPU or GPU), replaced when one dies."""

    def __init__(self, ray, settings: BatchSettings, size: int, gpu: bool):
        self.ray, self.settings, self.gpu = ray, settings, gpu
        self.actors: list = []  # every live worker, busy or free
        self.free: deque = deque(self.spawn() for _ in range(size))
        self.jobs: deque = deque()

    def spawn(self):
        options = {"num_cpus": 1, "num_gpus": 1 if self.gpu else 0, "max_restarts": 0, "max_concurrency": 2}
        # unique in this process, whose pools come and go (a studio's engines): a name is freed only once its
        # killed worker is gone
        name = f"kinemo-batch-{os.getpid()}-{'gpu' if self.gpu else 'cpu'}-{next(SPAWNED)}"
        self.actors.append(self.ray.remote(**options)(BatchWorker).options(name=name).remote(self.settings))
        return self.actors[-1]

    def replace(self, dead) -> None:
        """A fresh worker for a dead one, at the back of the line, so a job sent again goes to another first."""
        self.ray.kill(dead, no_restart=True)
        self.actors.remove(dead)
        self.free.append(self.spawn())

    def kill(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors.clear()
        self.free.clear()


def pools_for(ray, jobs: list[Job], settings: BatchSettings, workers: int | None, batch) -> dict[bool, Pool]:
    """{needs a GPU: Pool}, sized by --workers or the cluster's CPUs and GPUs, each job queued in its pool."""
    from app.jobs.runner import by_model

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    wanted = {job.key: job.needs_gpu and settings.options.device != "cpu" for job in jobs}
    if any(wanted.values()) and not gpus:
        batch.say("warning: the Ray cluster has no GPU; the diffusers models' jobs run on CPU workers")
        wanted = dict.fromkeys(wanted, False)
    pools: dict[bool, Pool] = {}
    for gpu in (False, True):
        queued = [job for job in by_model(jobs) if wanted[job.key] == gpu]
        if queued:
            room = gpus if gpu else max(int(resources.get("CPU", 1)), 1)
            pools[gpu] = Pool(ray, settings, min(workers or room, room, len(queued)), gpu)
            pools[gpu].jobs.extend(queued)
    return pools


def run_on_ray(ray, jobs: list[Job], output: Path, settings: BatchSettings, batch, address: str, workers) -> None:
    """Render jobs on Ray; batch (app.jobs.batch_cli.BatchRun) journals each one as its file arrives."""
    if not jobs:
        return
    started = connect(ray, address, workers, batch.say)
    pools: dict[bool, Pool] = {}
    try:
        pools = pools_for(ray, jobs, settings, workers, batch)
        local = address == LOCAL
        schedule(ray, pools, output, batch, lambda job: str(batch.checkpoint_dir(job)) if local else None)
    finally:
        for pool in pools.values():
            pool.kill()
        if started:
            ray.shutdown()


def schedule(ray, pools: dict[bool, Pool], output: Path, batch, checkpoint_dir) -> None:
    """Keep every free worker busy until every job has ended; a dead worker's job is queued again."""
    from ray.exceptions import RayActorError

    running: dict = {}  # ObjectRef -> (job, actor, pool)
    attempts: dict[str, int] = {}
    while running or any(pool.jobs for pool in pools.values()):
        for pool in pools.values():
            while pool.free and pool.jobs:
                job, actor = pool.jobs.popleft(), pool.free.popleft()
                running[actor.render.remote(job, job_inputs(job), checkpoint_dir(job))] = (job, actor, pool)
        [ready], _ = ray.wait(list(running), num_returns=1)
        job, actor, pool = running.pop(ready)
        try:
            result = ray.get(ready)
        except RayActorError as exc:
            pool.replace(actor)
            attempts[job.key] = attempts.get(job.key, 0) + 1
            if attempts[job.key] < MAX_ATTEMPTS:
                batch.say(f"{job.name}: its worker died; sending it to another")
                pool.jobs.appendleft(job)
            else:
                batch.failed(job, f"its worker died {MAX_ATTEMPTS} times ({type(exc).__name__})")
            continue
        pool.free.append(actor)
        finish(job, result, output, batch)


def render_one(ray, pool: Pool, job: Job, settings: BatchSettings | None = None, checkpoint_dir: str | None = None):
    """Render one job on one of pool's workers (a studio's queue, one job at a time): a generator that yields the
    worker every POLL_SECONDS while it renders, for the caller to take its events or stop it, and returns its
    answer as BatchWorker.render gives it. A worker that dies is replaced and the job sent again, up to
    MAX_ATTEMPTS times; a caller that stops listening has the job stopped, its worker kept once it has."""
    from ray.exceptions import RayActorError

    inputs, attempts = job_inputs(job), 0
    while True:
        actor = pool.free.popleft() if pool.free else pool.spawn()
        answer = actor.render.remote(job, inputs, checkpoint_dir, settings)
        try:
            yield actor
            while not ray.wait([answer], timeout=POLL_SECONDS)[0]:
                yield actor
            result = ray.get(answer)
        except RayActorError as exc:
            pool.replace(actor)
            attempts += 1
            if attempts == MAX_ATTEMPTS:
                return {"error": f"its Ray worker died {MAX_ATTEMPTS} times ({type(exc).__name__})"}
            continue
        except BaseException:  # the caller closed the generator (a Cancel, the window closing) or failed
            _stop(ray, pool, actor, answer)
            raise
        pool.free.append(actor)
        return result


def _stop(ray, pool: Pool, actor, answer) -> None:
    """Stop the job a worker renders; the worker goes back to the pool once it answers, or is replaced."""
    from ray.exceptions import RayError

    try:
        actor.stop.remote()
        ray.get(answer, timeout=STOP_GRACE_SECONDS)
    except (RayError, TimeoutError):  # dead, or stuck in a step: a fresh worker for the next job
        pool.replace(actor)
        return
    pool.free.append(actor)


def finish(job: Job, result: dict, output: Path, batch) -> None:
    """A worker's answer: the file written here and journaled, or the job's failure recorded."""
    if "error" in result:
        batch.failed(job, result["error"])
        return
    try:
        unpack(result["files"], output / job.file_name)
    except OSError as exc:
        batch.failed(job, f"the file came back but could not be written: {exc.strerror or exc}")
        return
    batch.done(job, result["stats"])
