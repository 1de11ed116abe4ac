"""RunOptions.checkpoint_dir is per run: it leaves backend_key alone and for_run carries it to a kept backend."""

from __future__ import annotations

import pytest

from engine.api.errors import InvalidRequest
from engine.api.run_options import RunOptions
from engine.backends.base import for_run


def test_checkpoint_dir_leaves_the_backend_key_alone(tmp_path):
    assert RunOptions(checkpoint_dir=str(tmp_path)).backend_key == RunOptions().backend_key


def test_for_run_carries_the_checkpoint_dir_and_clears_it(tmp_path):
    class Kept:
        options = RunOptions()

    kept = for_run(Kept(), RunOptions(checkpoint_dir=str(tmp_path), cache="auto"))
    assert (kept.options.checkpoint_dir, kept.options.cache) == (str(tmp_path), "auto")
    assert for_run(kept, RunOptions()).options.checkpoint_dir is None  # the next run does not inherit it


def test_checkpoint_dir_round_trips_and_refuses_non_text(tmp_path):
    options = RunOptions(checkpoint_dir=str(tmp_path))
    assert RunOptions.from_dict(options.to_dict()) == options
    with pytest.raises(InvalidRequest, match="checkpoint_dir"):
        RunOptions.from_dict({"checkpoint_dir": 3})
    with pytest.raises(InvalidRequest, match="checkpoint_dir"):
        RunOptions.from_dict({"checkpoint_dir": ""})
