"""`kinemo extend` end to end with the bundled model: a clip it made, continued into one file without a seam."""

import numpy as np

from app.cli import main
from engine.backends.bundled_extend import JOIN_LIMIT, frame_changes
from engine.util.videos import load_video
from export import read_record


def test_kinemo_extend_continues_a_bundled_model_clip_without_a_seam(tmp_path, capsys):
    clip, out = tmp_path / "clip.mp4", tmp_path / "longer.mp4"
    prompt = "a blue square grows on a white background"
    assert main(["generate", prompt, "-o", str(clip), "--frames", "16", "--width", "128", "--height", "128"]) == 0
    assert main(["extend", str(clip), "-o", str(out), "--frames", "12"]) == 0
    capsys.readouterr()
    original, _ = load_video(clip)
    frames, _ = load_video(out)
    assert frames.shape == (28, 128, 128, 3)
    changes = frame_changes(frames)
    assert changes[15] <= JOIN_LIMIT * np.median(changes[:15])  # the join, against the clip's own changes
    assert np.abs(frames[:16].astype(int) - original.astype(int)).mean() < 3  # the clip itself, encoded once more
    request = read_record(out)["request"]
    assert request["extends"] == str(clip) and request["frames"] == 12 and request["prompt"] == prompt
