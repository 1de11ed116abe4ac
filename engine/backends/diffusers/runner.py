"""Running a diffusers pipeline call as a stream of events.

A pipeline call is one blocking function, while a backend yields events as it goes; so the call runs on a
worker thread whose step callback posts progress and previews to a queue, and raises Cancelled when the
consumer asks to stop or walks away.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator

import numpy as np

from engine.api.errors import Cancelled, InvalidRequest, KinemoError
from engine.api.events import Event, Notice, Preview, Progress
from engine.api.request import GenerationRequest
from engine.backends.diffusers.placement import is_out_of_memory
from engine.backends.diffusers.preview import latent_preview
from engine.util.frames import to_uint8


class PipelineOutOfMemory(Exception):
    """The pipeline (or loading it) ran out of memory; the backend retries or raises OutOfMemory."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _PipelineCall:
    """The pipeline call on the worker thread: it posts ("step", timestep, preview), ("done", frames, audio),
    ("error", exc) or ("oom", message) to events, and ends the run at the next step once stop is set."""

    def __init__(self, pipe, arguments: dict, latent_layout: str, latent_grid, model_id: str, step_callback: bool):
        self.pipe, self.arguments, self.model_id, self.step_callback = pipe, arguments, model_id, step_callback
        self.layout, self.grid = latent_layout, latent_grid
        self.events: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        # engine.backends.diffusers.step_checkpoints: saved from the step callback, and the state resumed from
        self.checkpoint, self.resume, self.generator = None, None, None

    def step(self, timestep: float, latents) -> None:
        self.events.put(("step", timestep, latent_preview(latents, self.layout, self.grid)))
        if self.stop.is_set():
            raise Cancelled("generation cancelled")

    def on_step_end(self, pipe, index, timestep, tensors) -> dict:
        # SkyReels-V2's diffusion forcing passes one timestep per latent frame: the first frame's is shown
        if self.checkpoint is not None:  # saved before a stop is honoured; a resumed loop counts from 0 again
            done_before = self.resume.next_step if self.resume is not None else 0
            self.checkpoint.after_step(pipe.scheduler, done_before + index, tensors["latents"], self.generator)
        self.step(float(timestep.flatten()[0]) if getattr(timestep, "ndim", 0) else float(timestep), tensors["latents"])
        return {}

    def call(self, generator):
        self.generator = generator
        if self.resume is not None:  # the saved latents, generator and scheduler: the loop runs the steps left
            from engine.backends.diffusers.step_checkpoints import resumed_scheduler

            with resumed_scheduler(self.pipe.scheduler, self.resume, generator):
                return self._call(generator, {**self.arguments, "latents": self.resume.latents})
        return self._call(generator, self.arguments)

    def _call(self, generator, arguments: dict):
        if self.step_callback:
            return self.pipe(
                **arguments,
                generator=generator,
                callback_on_step_end=self.on_step_end,
                callback_on_step_end_tensor_inputs=["latents"],
            )
        from engine.backends.diffusers.step_hook import step_hook

        with step_hook(self.pipe.transformer, self.step):
            return self.pipe(**arguments, generator=generator)

    def work(self, seed: int) -> None:
        import torch

        try:
            # SkyReels-V2 noises the frames it continues with torch.randn_like, from torch's global generator: seeded
            # too, so one seed gives one clip
            torch.manual_seed(seed)
            result = self.call(torch.Generator("cpu").manual_seed(seed))
            self.events.put(("done", result.frames, getattr(result, "audio", None)))
        except (ValueError, TypeError) as exc:  # the pipeline's own input checks
            error = exc if isinstance(exc, KinemoError) else InvalidRequest(f"{self.model_id}: {first_line(exc)}")
            self.events.put(("error", error))
        except BaseException as exc:  # handed to the consumer's thread, raised there
            if is_out_of_memory(exc):  # only the message: the traceback would keep the run's tensors alive
                self.events.put(("oom", first_line(exc)))
            else:
                self.events.put(("error", exc))


def run_pipeline(
    pipe,
    arguments: dict,
    request: GenerationRequest,
    latent_layout: str,
    latent_grid: tuple[int, int, int] | None,
    should_stop: Callable[[], bool] | None,
    model_id: str,
    total: int | None = None,
    step_callback: bool = True,
    checkpoint=None,
) -> Generator[Event, None, tuple[np.ndarray, object, float]]:
    """Call the pipeline on a worker thread, yielding Progress and Preview; return (frames, audio, seconds):
    audio is what the pipeline returned beside the frames (None from pipelines that make no sound). total is how
    many times the step callback runs (request.steps unless a family denoises in several windows). A pipeline
    without a step callback (step_callback False) is followed through its transformer's forward calls instead
    (engine.backends.diffusers.step_hook): each step is reported as it starts. checkpoint: a StepCheckpoint
    (engine.backends.diffusers.step_checkpoints) the call saves to and, when it holds this run's state, resumes from."""
    run = _PipelineCall(pipe, arguments, latent_layout, latent_grid, model_id, step_callback)
    started, done, total = time.perf_counter(), 0, total or request.steps
    if checkpoint is not None:
        run.checkpoint, run.resume = checkpoint, checkpoint.load()
        yield from checkpoint.notices
        checkpoint.notices.clear()  # said; a save that fails on the worker thread adds its own
        if run.resume is not None:
            done = run.resume.next_step
            yield Notice(
                f"continuing from the checkpoint in {checkpoint.folder}: {done} of {total} steps were made before "
                "the run stopped"
            )
    worker = threading.Thread(target=run.work, args=(request.seed,), name="kinemo-diffusers", daemon=True)
    worker.start()
    try:
        while True:
            kind, *payload = run.events.get()
            if kind == "error":
                raise payload[0]
            if kind == "oom":
                raise PipelineOutOfMemory(payload[0])
            if kind == "done":
                if checkpoint is not None:
                    checkpoint.remove()  # the run is done: nothing left to resume
                return to_uint8(np.asarray(payload[0])[0]), payload[1], time.perf_counter() - started
            timestep, preview = payload
            done += 1
            yield Progress(done, max(total, done), int(timestep), time.perf_counter() - started)
            yield Preview(done, preview)
            while checkpoint is not None and checkpoint.notices:
                yield checkpoint.notices.pop(0)
            if should_stop is not None and should_stop():
                run.stop.set()
    finally:
        run.stop.set()  # the consumer may have walked away: the callback ends the run at the next step
        worker.join()
