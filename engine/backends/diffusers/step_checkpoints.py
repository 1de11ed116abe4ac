"""Resumable diffusers runs: the latents and the scheduler's state saved between steps, a stopped run continued.

With RunOptions.checkpoint_dir, a run of a family in RESUMABLE saves, from its step callback at most every
SAVE_EVERY_S seconds, the latents after a step, the scheduler's state (its step index and, for multistep solvers
such as Wan's UniPC, the model outputs it carries from step to step), the generator's state and the next step's
index, under a key of the request and the settings that change the latents. A run with the same key passes the
saved latents to the pipeline, whose loop then walks only the remaining timesteps: the scheduler is set as the
pipeline sets it, then given its saved state, and shows the loop the timesteps from the next step on
(resumed_scheduler); every step after that is the uninterrupted run's, so the clip is the same frame for frame.

Which runs cannot (not_resumable says so in a Notice), each for a reason of its pipeline: SVD, and AnimateDiff with
an Euler scheduler (AnimateDiff-Lightning), scale latents they are given by the scheduler's initial sigma;
CogVideoX's DPM scheduler (the 5B models) carries the previous x0 as a local of the pipeline's loop, out of a
callback's reach; LTX-2 steps its audio latents with a private copy of the scheduler; HunyuanVideo 1.5 takes no step
callback; SkyReels-V2 and AnimateDiff's context windows denoise window after window inside one call. A step cache
keeps state of its own across steps, and video-to-video begins mid-schedule by itself: neither checkpoints.
"""

from __future__ import annotations

import functools
import io
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.api.events import Notice
from engine.backends.checkpoints import PER_RUN_ONLY, failure_reason, remove_checkpoint, run_key
from engine.util.files import atomic_write_bytes, file_sha256

FORMAT = "kinemo-steps/1"
FILE_NAME = "steps.pt"
# families whose stopped runs resume to the uninterrupted clip (tests/engine/backends/test_diffusers_step_checkpoints)
RESUMABLE = ("wan", "ltx", "kandinsky5", "sana_video", "cogvideox", "animatediff")
SAVE_EVERY_S = 30.0  # a save costs the latents' size in writes; a step of a large model takes seconds to minutes


@dataclass
class StepState:
    next_step: int  # the first step still to run
    latents: object  # torch.Tensor as the step callback sees them
    scheduler: dict  # the scheduler's attributes but its config (encoded: tensors with their devices)
    generator: object  # torch.ByteTensor: the pipeline generator's state


@dataclass
class StepCheckpoint:
    folder: Path
    key: str
    total: int  # the run's steps: nothing is saved after the last
    every_s: float = SAVE_EVERY_S
    notices: list[Notice] = field(default_factory=list)  # said by the run: what load() found, a save that failed
    saved_at: float = field(default_factory=time.monotonic)
    failed: bool = False  # a save could not be made: the run goes on without saving

    @property
    def path(self) -> Path:
        return Path(self.folder) / FILE_NAME

    def after_step(self, scheduler, step: int, latents, generator) -> None:
        """Save the state after step (0-based, counted over the whole run) when it is time to. A save that cannot
        be made (a full disk, a scheduler holding what cannot be kept) does not stop the run: it is said once."""
        if self.failed or step + 1 >= self.total or time.monotonic() - self.saved_at < self.every_s:
            return
        try:
            self._write(scheduler, step, latents, generator)
        except (OSError, TypeError) as exc:
            self.failed = True
            self.notices.append(
                Notice(f"cannot write the checkpoint {self.path} ({failure_reason(exc)}); the run goes on without")
            )

    def _write(self, scheduler, step: int, latents, generator) -> None:
        import torch

        # the scheduler's own values; methods set on it (a resumed call's patched ones) are not state
        state = {k: v for k, v in vars(scheduler).items() if k != "_internal_dict" and not callable(v)}
        data = {
            "format": FORMAT,
            "key": self.key,
            "next_step": step + 1,
            "latents": latents.detach().cpu(),
            "scheduler": _encode(state),
            "generator": generator.get_state(),
        }
        buffer = io.BytesIO()
        torch.save(data, buffer)
        atomic_write_bytes(self.path, buffer.getvalue())
        self.saved_at = time.monotonic()

    def load(self) -> StepState | None:
        """This run's saved state, or None: none, another run's (a Notice), or unreadable (a Notice)."""
        import torch

        if not self.path.is_file():
            return None
        try:
            data = torch.load(self.path, map_location="cpu", weights_only=True)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
            if data["key"] != self.key:
                self.notices.append(
                    Notice(f"the checkpoint {self.path} belongs to another request or settings; this run replaces it")
                )
                return None
            state = StepState(int(data["next_step"]), data["latents"], data["scheduler"], data["generator"])
            if not 0 < state.next_step < self.total:
                raise ValueError(f"step {state.next_step} of {self.total}")
        except Exception as exc:  # a damaged file is set aside whatever is wrong with it: the run starts over
            self.notices.append(
                Notice(
                    f"the checkpoint {self.path} cannot be read ({failure_reason(exc)}); "
                    "this run starts from the beginning"
                )
            )
            return None
        return state

    def remove(self) -> None:
        remove_checkpoint(self.path)


def _encode(value):
    """Scheduler state in what torch.load(weights_only=True) reads back: tensors (with their device), numbers,
    text, None, lists and dicts of these; anything else is refused (TypeError), and that run keeps no checkpoint."""
    import torch

    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().cpu(), "device": str(value.device)}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot keep a {type(value).__name__} of the scheduler")


def _decode(value):
    if "tensor" in value:
        return value["tensor"].to(value["device"])
    if "list" in value:
        return [_decode(v) for v in value["list"]]
    if "dict" in value:
        return {k: _decode(v) for k, v in value["dict"].items()}
    return value["value"]


@contextmanager
def resumed_scheduler(scheduler, state: StepState, generator):
    """Within the block the pipeline's scheduler continues from state: set_timesteps sets it up as usual, then puts
    the saved state back and shows the pipeline's loop the timesteps from state.next_step on; its first step
    sees all of them again (multistep solvers count the steps left from them) and puts the generator's state
    back: what the pipeline draws before its loop (a picture's latents sampled from the VAE) is drawn as the
    stopped run drew it, from the seed."""
    from engine.util.patching import patched

    set_timesteps, step = scheduler.set_timesteps, scheduler.step
    saved = _decode(state.scheduler)
    everything = saved["timesteps"]

    @functools.wraps(set_timesteps)  # pipelines read its signature (retrieve_timesteps asks: does it take sigmas?)
    def set_then_restore(*args, **kwargs):
        set_timesteps(*args, **kwargs)
        vars(scheduler).update(saved)
        scheduler.timesteps = everything[state.next_step :]  # what the loop walks: `timesteps = scheduler.timesteps`

    @functools.wraps(step)
    def step_with_every_timestep(*args, **kwargs):
        if scheduler.timesteps is not everything:  # the first step of the resumed loop
            scheduler.timesteps = everything
            generator.set_state(state.generator)
        return step(*args, **kwargs)

    with patched([(scheduler, "set_timesteps", set_then_restore), (scheduler, "step", step_with_every_timestep)]):
        yield


def not_resumable(scheduler, family, request, cache: str) -> str | None:
    """Why a run cannot continue from a checkpoint exactly, or None when it can."""
    if family.name not in RESUMABLE or not family.step_callback:
        return f"{family.label} does not checkpoint its steps yet"
    if float(getattr(scheduler, "init_noise_sigma", 1.0)) != 1.0:  # SVD, AnimateDiff: latents given are scaled by it
        return f"{family.label} with {type(scheduler).__name__} scales the latents a resumed run would start from"
    if type(scheduler).__name__ == "CogVideoXDPMScheduler":
        return "CogVideoX's DPM scheduler carries the previous step's estimate in the pipeline's loop"
    if family.context_frames is not None and (request.frames > family.context_frames or request.prompt_changes):
        return f"{family.label}'s context windows prepare the latents of a long clip themselves"
    if cache != "off":
        return "a step cache keeps state of its own from step to step"
    if request.video or request.extends:
        return "video-to-video and extensions start part-way through the schedule by themselves"
    return None


def step_checkpoint(backend, family, request, total: int) -> tuple[StepCheckpoint | None, list[Notice]]:
    """The checkpoint of a diffusers run, or None (with a Notice when a checkpoint_dir was given but this run
    cannot keep one). The key covers the request, its picture's bytes, the model, the device, fp8 weights and the
    run options but those of PER_RUN_ONLY."""
    options = backend.options
    if options.checkpoint_dir is None:
        return None, []
    why = not_resumable(backend.pipe.scheduler, family, request, options.cache)
    if why is not None:
        return None, [Notice(f"{why}: this run keeps no checkpoint, and if it stops it starts over")]
    policy, folder = getattr(backend, "pipe_policy", None), backend.local_folder()
    key = run_key(
        request=request.to_json(),
        image=file_sha256(Path(request.image)) if request.image else None,
        model=(backend.model_id, str(folder.path) if folder else None),
        device=str(backend.device),
        fp8=bool(policy and policy.fp8),
        options={k: v for k, v in options.to_dict().items() if k not in PER_RUN_ONLY},
    )
    return StepCheckpoint(Path(options.checkpoint_dir), key, total, every_s=SAVE_EVERY_S), []
