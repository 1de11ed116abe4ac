"""The Backend contract every caller uses, and open_backend(), which picks the backend for a model.

A caller (the CLI, the studio's engine process, the evaluation, later a batch runner or a server) builds one
GenerationRequest and one RunOptions, calls open_backend(request.model, options), then backend.check(request)
and backend.generate(request): the first events are Loaded and the memory plan (MemoryNotice), then Progress and
Preview per step, Frames as they are finished and Finished. Errors are engine.api.errors exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from engine.api.events import Event
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.registry.resolve import resolve_model


class Backend(Protocol):
    model_id: str
    options: RunOptions

    def defaults(self) -> dict:
        """Sizes, steps, guidance, frames and fps a request gets when the user gives none."""
        ...

    def check(self, request: GenerationRequest) -> None:
        """Raise InvalidRequest when this model cannot make the request; never downloads or loads."""
        ...

    def plan(self, request: GenerationRequest, memory: str | None = None):
        """The memory plan of a run (engine.planning.plan.MemoryPlan); memory overrides options.memory."""
        ...

    def generate(
        self,
        request: GenerationRequest,
        should_stop: Callable[[], bool] | None = None,
        memory: str | None = None,
    ) -> Iterator[Event]:
        """Yield Loaded, MemoryNotice, Notice*, (Progress, Preview)*, Frames+, Finished; raise Cancelled when
        should_stop() says so. memory overrides options.memory for this run (a kept backend serves many runs)."""
        ...

    def release(self) -> None:
        """Give the loaded weights' memory back."""
        ...


def open_backend(model: str, options: RunOptions | None = None, progress_class=None) -> Backend:
    """The backend for a model id, a hub id or a model folder; raises InvalidRequest for unknown names or
    options. Nothing is loaded or downloaded until generate(). progress_class: tqdm class for downloads."""
    from engine.backends.threads import idle_threads_sleep

    idle_threads_sleep()  # before anything imports torch
    options = (options or RunOptions()).validate()
    ref = resolve_model(model)
    if ref.is_kinemo:
        from engine.backends.bundled import BundledBackend

        return BundledBackend(ref.folder, options, model_id=ref.name)
    from engine.backends.devices import pick_device
    from engine.backends.diffusers.backend import DiffusersBackend

    pick_device(options.device)  # an unusable --device is bad input: say so before any download
    return DiffusersBackend(ref, options, progress_class)


def for_run(backend: Backend, options: RunOptions) -> Backend:
    """A kept backend set to this run's per-run options: the step cache and the checkpoint folder are chosen per
    run (backend_key leaves them out, so changing them does not reload a model), and check() admits the cache
    again before the run."""
    from dataclasses import replace

    backend.options = replace(backend.options, cache=options.cache, checkpoint_dir=options.checkpoint_dir)
    return backend
