"""The studio's Qt-free parts: prompt helpers, export names, history and settings files, the engine pipe."""

import itertools
import json
import pickle
import time

import numpy as np
import pytest
from studio_helpers import PROMPT, clip_frames

from app.studio.engine_client import ProcessEngine
from app.studio.engine_host import InputsRead, reported
from app.studio.exporter import is_taken, next_free_path, suggested_name, with_extension
from app.studio.history import HistoryStore
from app.studio.prompt_tools import camera_move_in, camera_moves_for, unknown_words, with_camera_move
from app.studio.settings_store import SettingsStore
from engine.api.errors import Cancelled, ImageError, KinemoError
from engine.api.events import Finished, Frames, Loaded, Preview, Progress
from engine.api.request import GenerationRequest
from engine.kinemo.vocabulary import PICTURE_MOVES


@pytest.mark.parametrize(
    "prompt, move, expected",
    [
        ("", "pans left", "the camera pans left"),
        ("the camera pans left", "zooms out", "the camera zooms out"),
        (
            "a red circle moves right on a black background",
            "zooms in",
            "a red circle moves right on a black background, the camera zooms in",
        ),
        (
            "a red circle moves right on a black background, the camera zooms in",
            None,
            "a red circle moves right on a black background",
        ),
        ("The Camera Pans Right over it", "pans left", "The Camera pans left over it"),
    ],
)
def test_camera_phrases(prompt, move, expected):
    assert with_camera_move(prompt, move) == expected
    assert camera_move_in(expected) == move


def test_model_traits(tiny_model, tmp_path):
    assert camera_moves_for("kinemo-starter") == camera_moves_for(tiny_model) == PICTURE_MOVES
    assert camera_moves_for(str(tmp_path)) == ()
    assert unknown_words("a red dragon and a dragon", "kinemo-starter") == ("dragon", "and")
    assert unknown_words("a red dragon", str(tmp_path)) == ()


def test_export_names(tmp_path):
    request = GenerationRequest(PROMPT, seed=5)
    assert suggested_name(request, "mp4") == "a-red-circle-moves-right-on-s5.mp4"
    assert suggested_name(request, "png") == "a-red-circle-moves-right-on-s5"
    assert with_extension(tmp_path / "x", "gif") == tmp_path / "x.gif"
    assert with_extension(tmp_path / "x.mp4", "webm") == tmp_path / "x.webm"
    assert with_extension(tmp_path / "x.png", "png") == tmp_path / "x"
    (tmp_path / "clip.mp4").write_bytes(b"1")
    (tmp_path / "clip-2.mp4").write_bytes(b"2")
    assert next_free_path(tmp_path / "clip.mp4", "mp4") == tmp_path / "clip-3.mp4"
    (tmp_path / "empty").mkdir()
    assert not is_taken(tmp_path / "empty", "png") and is_taken(tmp_path / "clip.mp4", "mp4")


def test_history_lists_only_complete_entries(data_dir):
    store = HistoryStore()
    first = store.save(GenerationRequest(PROMPT, seed=1, frames=4), clip_frames(4), 1.0)
    time.sleep(0.01)
    second = store.save(GenerationRequest(PROMPT, seed=2, frames=4), clip_frames(4), 1.0)
    (store.folder / "broken.json").write_text("{not json")
    (store.folder / "orphan.json").write_text(json.dumps({"request": {}, "created": 1}))  # no clip
    assert [e.id for e in store.entries()] == [second.id, first.id]
    assert np.array_equal(first.load_frames(), clip_frames(4))
    store.remove(first)
    assert [e.id for e in store.entries()] == [second.id]


def test_settings_file_survives_damage(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    assert store.load() == {}
    store.save({"a": 1})
    assert store.load() == {"a": 1}
    store.path.write_text("[1, 2")
    assert store.load() == {}


def test_engine_errors_travel_as_engine_exceptions():
    image_error = pickle.loads(pickle.dumps(reported(ImageError("image not found: x\nmore"))))
    assert type(image_error) is ImageError and str(image_error) == "image not found: x"
    other = reported(RuntimeError("CUDA out of memory"))
    assert type(other) is KinemoError and "RuntimeError" in str(other) and "CUDA out of memory" in str(other)


def test_engine_process_streams_events_and_stops_within_a_step(tiny_model):
    engine = ProcessEngine()
    try:
        request = GenerationRequest(PROMPT, model=tiny_model, steps=3, frames=4)
        kinds = [type(e) for e in engine.generate(request)]
        assert kinds[:2] == [InputsRead, Loaded], "the request as the engine read it comes first"
        assert kinds.count(Progress) == 3 and kinds.count(Preview) == 3
        assert kinds[-2:] == [Frames, Finished]

        # 16-frame previews nearly fill the pipe, so the engine runs at most one step ahead of this loop
        stop = {"now": False}
        after_stop = []
        with pytest.raises(Cancelled):
            long_request = request.with_changes(steps=200, frames=16)
            for event in engine.generate(long_request, should_stop=lambda: stop["now"]):
                if isinstance(event, Progress):
                    if stop["now"]:
                        after_stop.append(event.step)
                    stop["now"] = stop["now"] or event.step == 2
        # the step the engine was making when the stop arrived, and one whose events were already on their way
        assert len(after_stop) <= 2, f"steps after the request to stop: {after_stop}"
        # the same process, model cached, serves the next job
        assert [type(e) for e in itertools.islice(engine.generate(request), 2)] == [InputsRead, Loaded]
    finally:
        engine.shutdown()
    assert not engine.running
