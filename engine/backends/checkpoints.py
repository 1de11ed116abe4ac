"""Resumable runs: a long clip's state, saved as it goes, so a run that dies continues instead of starting over.

A run with RunOptions.checkpoint_dir keeps one checkpoint file there. The bundled model saves one after every
finished window of a long clip (engine.backends.bundled_windows): the finished frames, window by window, the
rolling temporal K/V cache (engine.caches.temporal_kv), the CPU generator's state and the next window's index,
under a key that hashes the request and everything else that changes the output. A later run with the same key
re-yields the saved frames and carries on from the next window, so its clip equals an uninterrupted run's; a
checkpoint with another key, or one that cannot be read, is set aside with a Notice and replaced.

The file is safetensors (tensors and a JSON header, nothing that runs code when read), written to a temporary
name and renamed over the previous checkpoint once whole, so a kill at any moment leaves the old one or the new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.api.events import Notice
from engine.util.files import atomic_write_bytes, file_sha256

FORMAT = "kinemo-windows/1"
FILE_NAME = "windows.safetensors"
# run options that leave the bundled model's frames as they are; every other one (a new one too) is in the key
PER_RUN_ONLY = ("token", "checkpoint_dir", "memory")


def run_key(**parts) -> str:
    """A hex SHA-256 of the JSON of parts: what makes one run's output (request, model, options)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class WindowState:
    """Where a long clip stands after a finished window: next_window is the first window still to make."""

    next_window: int
    chunks: list[tuple[int, np.ndarray]]  # (start, (n, h, w, 3) uint8) per finished window, as yielded
    generator: object  # torch.ByteTensor: torch.Generator.get_state() after the finished window
    cache: dict[tuple[int, int], tuple[object, object, dict[int, int]]]  # (step, block) -> k, v, frame id -> slot
    cache_peak_bytes: int = 0

    @property
    def frames(self) -> int:
        return sum(len(frames) for _, frames in self.chunks)


@dataclass
class WindowCheckpoint:
    """The checkpoint file of one run: saved after each finished window, read back by a run with the same key."""

    folder: Path
    key: str
    notices: list[Notice] = field(default_factory=list)  # what load() found wrong, for the run to say
    failed: bool = False  # a save could not be written: the run goes on without saving

    @property
    def path(self) -> Path:
        return Path(self.folder) / FILE_NAME

    def save(self, state: WindowState) -> list[Notice]:
        """Replace the checkpoint with state, whole or not at all. A checkpoint that cannot be written (a full disk,
        a read-only folder) does not stop the run: it is said once, and the run goes on without saving."""
        if self.failed:
            return []
        try:
            self._write(state)
        except OSError as exc:
            self.failed = True
            return [Notice(f"cannot write the checkpoint {self.path} ({exc.strerror or exc}); the run goes on without")]
        return []

    def _write(self, state: WindowState) -> None:
        from safetensors.torch import save

        tensors = {"generator": state.generator.contiguous()}
        for number, (_, frames) in enumerate(state.chunks):
            tensors[f"frames.{number}"] = _tensor(frames)
        slots = {}
        for (step, block), (k, v, taken) in state.cache.items():
            tensors[f"k.{step}.{block}"] = k.detach().cpu().contiguous()
            tensors[f"v.{step}.{block}"] = v.detach().cpu().contiguous()
            slots[f"{step}.{block}"] = {str(fid): slot for fid, slot in taken.items()}
        header = {
            "format": FORMAT,
            "key": self.key,
            "next_window": state.next_window,
            "starts": [start for start, _ in state.chunks],
            "slots": slots,
            "cache_peak_bytes": state.cache_peak_bytes,
        }
        atomic_write_bytes(self.path, save(tensors, metadata={"kinemo": json.dumps(header)}))

    def load(self) -> WindowState | None:
        """The saved state of this run, or None: no checkpoint, another run's (a Notice), or unreadable (a Notice)."""
        if not self.path.is_file():
            return None
        try:
            header, tensors = _read(self.path)
        except Exception as exc:  # a damaged file is set aside whatever is wrong with it: the run starts over
            self.notices.append(
                Notice(
                    f"the checkpoint {self.path} cannot be read ({failure_reason(exc)}); this run starts from the beginning"
                )
            )
            return None
        if header.get("key") != self.key:
            self.notices.append(
                Notice(f"the checkpoint {self.path} belongs to another request or settings; this run replaces it")
            )
            return None
        cache = {}
        for name, taken in header["slots"].items():
            step, block = (int(part) for part in name.split("."))
            cache[(step, block)] = (
                tensors[f"k.{name}"],
                tensors[f"v.{name}"],
                {int(fid): int(slot) for fid, slot in taken.items()},
            )
        chunks = [(int(start), tensors[f"frames.{n}"].numpy()) for n, start in enumerate(header["starts"])]
        return WindowState(
            int(header["next_window"]), chunks, tensors["generator"], cache, int(header["cache_peak_bytes"])
        )

    def remove(self) -> None:
        remove_checkpoint(self.path)


def remove_checkpoint(path: Path) -> None:
    """The run is done: its checkpoint goes, and the folder too when nothing else is in it (another run's files
    keep it); a checkpoint never written, or a folder that could not be made, leaves nothing to remove."""
    for remove in (path.unlink, path.parent.rmdir):
        try:
            remove()
        except OSError:
            pass


def _tensor(frames: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames))


def _read(path: Path) -> tuple[dict, dict]:
    """The header and tensors of a checkpoint file; raises on anything malformed."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads((handle.metadata() or {})["kinemo"])
        if header.get("format") != FORMAT:
            raise ValueError(f"format {header.get('format')!r}, not {FORMAT}")
        for name in handle.keys():
            tensors[name] = handle.get_tensor(name)
    return header, tensors


def failure_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120]}" if text else type(exc).__name__


def window_checkpoint(backend, request, long_clip: bool) -> WindowCheckpoint | None:
    """The checkpoint of a bundled-model run, or None when the run keeps none: no checkpoint_dir, or a clip the
    model's window holds (one window: nothing to resume between). The key covers the request, the picture's bytes,
    the model's folder and files, the device and the run options but those of PER_RUN_ONLY."""
    options = backend.options
    if options.checkpoint_dir is None or not long_clip:
        return None
    folder = Path(backend.folder)
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.glob("*") if p.is_file())
    key = run_key(
        request=request.to_json(),
        image=file_sha256(Path(request.image)) if request.image else None,
        model=(backend.model_id, str(folder.resolve()), files),
        device=backend.device,
        options={k: v for k, v in options.to_dict().items() if k not in PER_RUN_ONLY},
    )
    return WindowCheckpoint(Path(options.checkpoint_dir), key)


def capture_windows(next_window: int, chunks: list, generator, rolling) -> WindowState:
    """The state of a long clip after its window next_window - 1: what a resumed run needs to go on exactly."""
    cache = {key: (store.k, store.v, dict(store.slots)) for key, store in rolling.kept.items()}
    return WindowState(next_window, list(chunks), generator.get_state(), cache, rolling.peak_bytes)


def restore_windows(state: WindowState, windows: list[list[int]], rolling, generator, device: str) -> bool:
    """Put state back into the rolling cache and the generator; False (nothing changed) when it does not fit
    these windows, as a file that reads well but holds the wrong thing."""
    from engine.caches.temporal_kv import SlotStore

    starts = [start for start, _ in state.chunks]
    if not 0 < state.next_window < len(windows) or starts != [ids[0] for ids in windows[: state.next_window]]:
        return False
    if any(len(frames) != len(ids) for (_, frames), ids in zip(state.chunks, windows, strict=False)):
        return False
    generator.set_state(state.generator)
    for key, (k, v, taken) in state.cache.items():
        store = SlotStore(len(k), k[0].to(device), k.dtype)
        store.k.copy_(k)
        store.v.copy_(v)
        store.slots = dict(taken)
        rolling.kept[key] = store
    rolling.peak_bytes = state.cache_peak_bytes
    return True
