"""A long clip of the bundled model checkpoints after every window, and a run with the same request continues from
the checkpoint (engine.backends.checkpoints): the clip equals an uninterrupted run's frame for frame."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api.errors import Cancelled
from engine.api.events import Finished, Frames, Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.bundled import BundledBackend
from engine.backends.checkpoints import FILE_NAME, WindowCheckpoint

STEPS = 2
# 40 frames in a 16-frame window: windows of 16, 8, 8 and 8 frames; eta > 0 draws noise at every step, so the
# generator's state has to come back exactly for the clip to be the same
REQUEST = GenerationRequest("a red circle moves right", frames=40, steps=STEPS, seed=3, eta=0.5)
WINDOW_ENDS = [16, 24, 32, 40]


def _events(folder, request=REQUEST, checkpoints=None, should_stop=None):
    backend = BundledBackend(folder, RunOptions(checkpoint_dir=str(checkpoints) if checkpoints else None))
    return backend.generate(request, should_stop=should_stop)


def _clip(events) -> tuple[np.ndarray, list[Frames], list[str], dict]:
    """The frames in order, the Frames events, the notices and the run's stats."""
    chunks, notices, stats = [], [], {}
    for event in events:
        if isinstance(event, Frames):
            chunks.append(event)
        elif isinstance(event, Notice):
            notices.append(event.message)
        elif isinstance(event, Finished):
            stats = event.stats
    assert [c.start for c in chunks] == [0, *np.cumsum([len(c.frames) for c in chunks])[:-1].tolist()]
    return np.concatenate([c.frames for c in chunks]), chunks, notices, stats


def _stop_in_window(window: int):
    """A should_stop that stops the run after the first step of window (0-based): every window before it is
    finished and checkpointed, that one step's work is lost."""
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] == window * STEPS + 1

    return stop


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def uninterrupted(model):
    return _clip(_events(model))


@pytest.mark.parametrize("window", [1, 2, 3])
def test_a_stopped_long_clip_resumes_to_the_uninterrupted_clip(model, uninterrupted, tmp_path, window):
    folder = tmp_path / "resume"
    with pytest.raises(Cancelled):
        _clip(_events(model, checkpoints=folder, should_stop=_stop_in_window(window)))
    assert (folder / FILE_NAME).is_file()

    clip, chunks, notices, stats = _clip(_events(model, checkpoints=folder))
    assert np.array_equal(clip, uninterrupted[0])
    # the saved frames leave window by window as they first did, so what follows (upscaling) sees the same chunks
    assert [(c.start, len(c.frames)) for c in chunks] == [(c.start, len(c.frames)) for c in uninterrupted[1]]
    kept = WINDOW_ENDS[window - 1]
    assert stats["resumed_frames"] == kept and any(f"{kept} of 40 frames" in n for n in notices)
    # the work lost: frames the stopped run had started beyond its checkpoint, made again by the resumed run
    started = WINDOW_ENDS[window]
    print(f"stopped in window {window}: {started - kept} of 40 frames recomputed ({40 - kept} made by the resume)")
    assert started - kept == WINDOW_ENDS[window] - WINDOW_ENDS[window - 1]
    assert not folder.exists()  # the finished run leaves nothing to resume


def test_the_checkpoint_is_whole_after_every_window_and_gone_at_the_end(model, tmp_path):
    folder = tmp_path / "resume"
    seen = []

    def look() -> bool:  # after each step: the file on disk is always one that reads back whole
        if (folder / FILE_NAME).is_file():
            seen.append(WindowCheckpoint(folder, _key_of(folder)).load().next_window)
        return False

    _clip(_events(model, checkpoints=folder, should_stop=look))
    assert sorted(set(seen)) == [1, 2, 3] and not folder.exists()


def _key_of(folder):
    import json

    from safetensors import safe_open

    with safe_open(str(folder / FILE_NAME), framework="pt") as handle:
        return json.loads(handle.metadata()["kinemo"])["key"]


def test_a_checkpoint_of_another_request_is_not_used_and_is_replaced(model, tmp_path):
    folder = tmp_path / "resume"
    other = REQUEST.with_changes(seed=4)
    with pytest.raises(Cancelled):
        _clip(_events(model, other, checkpoints=folder, should_stop=_stop_in_window(2)))
    theirs = _key_of(folder)

    with pytest.raises(Cancelled):  # this request's run sets the other one's checkpoint aside, then saves its own
        _clip(_events(model, checkpoints=folder, should_stop=_stop_in_window(2)))
    assert _key_of(folder) != theirs
    *_, stats = _clip(_events(model, checkpoints=folder))
    assert stats["resumed_frames"] == 24

    plain_other, *_ = _clip(_events(model, other))
    fresh, *_, stats = _clip(_events(model, other, checkpoints=tmp_path / "fresh"))
    assert "resumed_frames" not in stats and np.array_equal(fresh, plain_other)


def test_a_checkpoint_of_other_settings_is_not_used(model, uninterrupted, tmp_path):
    folder = tmp_path / "resume"
    with pytest.raises(Cancelled):
        _clip(_events(model, checkpoints=folder, should_stop=_stop_in_window(2)))
    backend = BundledBackend(model, RunOptions(checkpoint_dir=str(folder), kv_cache=False))
    clip, _, notices, stats = _clip(backend.generate(REQUEST))
    assert "resumed_frames" not in stats and any("another request or settings" in n for n in notices)
    assert np.array_equal(clip, uninterrupted[0])  # the conditioning cache is exact: the same clip, made whole


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_checkpoint_is_ignored_with_a_notice(model, uninterrupted, tmp_path, damage):
    folder = tmp_path / "resume"
    with pytest.raises(Cancelled):
        _clip(_events(model, checkpoints=folder, should_stop=_stop_in_window(2)))
    path = folder / FILE_NAME
    data = path.read_bytes()
    path.write_bytes(b"\x00not a checkpoint" * 10 if damage == "garbage" else data[: len(data) // 2])

    clip, _, notices, stats = _clip(_events(model, checkpoints=folder))
    assert np.array_equal(clip, uninterrupted[0]) and "resumed_frames" not in stats
    assert any(f"the checkpoint {path} cannot be read" in n for n in notices)
    assert not folder.exists()


def test_a_checkpoint_that_does_not_fit_the_windows_is_ignored(model, uninterrupted, tmp_path):
    folder = tmp_path / "resume"
    with pytest.raises(Cancelled):
        _clip(_events(model, checkpoints=folder, should_stop=_stop_in_window(2)))
    checkpoint = WindowCheckpoint(folder, _key_of(folder))
    state = checkpoint.load()
    state.chunks = state.chunks[:1]  # says two windows are done but holds one
    checkpoint.save(state)

    clip, _, notices, stats = _clip(_events(model, checkpoints=folder))
    assert np.array_equal(clip, uninterrupted[0]) and "resumed_frames" not in stats
    assert any("does not fit" in n for n in notices)


def test_a_clip_the_window_holds_writes_no_checkpoint(model, tmp_path):
    folder = tmp_path / "resume"
    seen = []
    _clip(
        _events(
            model,
            REQUEST.with_changes(frames=12),
            checkpoints=folder,
            should_stop=lambda: seen.append(folder.exists()) or False,
        )
    )
    assert seen and not any(seen) and not folder.exists()


def test_a_checkpoint_that_cannot_be_written_is_said_once_and_the_run_goes_on(model, uninterrupted, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    clip, _, notices, _ = _clip(_events(model, checkpoints=blocker / "resume"))
    assert np.array_equal(clip, uninterrupted[0])
    assert len([n for n in notices if "cannot write the checkpoint" in n]) == 1
    assert blocker.read_text() == "not a folder"
