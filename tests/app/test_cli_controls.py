"""The creative controls' bad input on the command line: one line on stderr, exit status 2, nothing written."""

import numpy as np
import pytest
from PIL import Image

from app.cli import main


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "first.png"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(path)
    return path


def fails_cleanly(argv, message, capsys, out):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("kinemo: error:") and message in err[0], err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_control_flags_refuse_bad_values(tmp_path, picture, capsys):
    out = tmp_path / "clip.mp4"
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are notes, not a video")
    base = ["generate", "a red circle moves right", "-o", str(out), "--frames", "8"]
    for extra, message in [
        (["--strength", "0.5"], "add --video PATH"),
        (["--video", str(not_a_video)], "is not a video ffmpeg can read"),
        (["--video", str(tmp_path / "missing.mp4")], "video not found"),
        (["--video", str(not_a_video), "--strength", "1.5", "--width", "32", "--height", "32"], "at most 1"),
        (["--last-image", str(picture)], "a last frame needs a first one"),
        (["--image", str(picture), "--last-image", str(picture)], "kinemo-starter cannot end a clip on a picture"),
        (["--prompt-at", "twelve:a blue square"], "--prompt-at takes FRAME:TEXT"),
        (["--prompt-at", "8:a blue square"], "outside the clip"),
        (["--prompt-at", "3:"], "is empty"),
        (["--prompt-at", "3:a", "--prompt-at", "3:b"], "same frame"),
        (["--lora", "style.ckpt"], "pickled weights"),
        (["--image", str(picture), "--video", str(not_a_video)], "do not combine"),
    ]:
        fails_cleanly(base + extra, message, capsys, out)


def test_extend_refuses_what_it_cannot_continue(tmp_path, capsys):
    out = tmp_path / "longer.mp4"
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are notes, not a video")
    fails_cleanly(["extend", str(not_a_video), "-o", str(out)], "is not a video ffmpeg can read", capsys, out)
    fails_cleanly(["extend", str(tmp_path / "gone.mp4"), "-o", str(out)], "video not found", capsys, out)

    import imageio_ffmpeg

    foreign = tmp_path / "foreign.mp4"  # a clip Kinemo did not make: no record says how to continue it
    writer = imageio_ffmpeg.write_frames(str(foreign), (32, 32), fps=8)
    writer.send(None)
    for value in (0, 80, 160):
        writer.send(np.full((32, 32, 3), value, np.uint8).tobytes())
    writer.close()
    fails_cleanly(["extend", str(foreign), "-o", str(out)], "carries no Kinemo record", capsys, out)


def test_a_video_sets_the_size_and_a_frame_count_the_model_can_make(build, tmp_path):
    """Wan makes 4k+1 frames: a 7-frame video is re-rendered as its first 5, at the video's aspect."""
    import imageio_ffmpeg
    from tiny_diffusers.cases import CASES

    from app.cli import build_request
    from app.cli_args import build_parser

    video = tmp_path / "seven.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (64, 48), fps=8)
    writer.send(None)
    for value in range(7):
        writer.send(np.full((48, 64, 3), value * 30, np.uint8).tobytes())
    writer.close()
    folder = build(next(case for case in CASES if case.name == "wan-t2v"))
    argv = ["generate", "a fox", "-o", str(tmp_path / "x.mp4"), "--model", str(folder), "--video", str(video)]
    _, request = build_request(build_parser().parse_args(argv))
    assert request.frames == 5 and request.width / request.height == pytest.approx(64 / 48, rel=0.1)
    _, request = build_request(build_parser().parse_args([*argv, "--frames", "3", "--width", "32", "--height", "32"]))
    assert (request.frames, request.width, request.height) == (3, 32, 32)


def test_a_missing_last_picture_is_one_line(build, tmp_path, picture, capsys):
    from tiny_diffusers.cases import CASES

    folder = build(next(case for case in CASES if case.name == "wan22-a14b-i2v"))  # a model that can end on one
    capsys.readouterr()
    out = tmp_path / "clip.mp4"
    argv = ["generate", "a fox", "-o", str(out), "--model", str(folder), "--frames", "9", "--width", "32"]
    argv += ["--height", "32", "--image", str(picture), "--last-image", str(tmp_path / "nope.png")]
    fails_cleanly(argv, "nope.png", capsys, out)
