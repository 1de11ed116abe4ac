"""kinemo generate --cache on a tiny diffusers model: the stats file counts what the cache skipped; a cache the
family does not take is refused in one line, and no clip is written."""

import json

from tiny_diffusers.cases import CASES

from app.cli import main

WAN = next(c for c in CASES if c.name == "wan-t2v")


def argv_for(folder, out, *extra):
    size = str(WAN.size)
    head = ["generate", "a fox", "-o", str(out), "--model", str(folder), "--steps", "6", "--frames", str(WAN.frames)]
    return head + ["--width", size, "--height", size, "--seed", "2", *extra]


def test_the_stats_count_the_blocks_a_cache_computed_and_skipped(build, tmp_path, capsys):
    out, stats = tmp_path / "clip.mp4", tmp_path / "stats.json"
    code = main(argv_for(build(WAN), out, "--cache", "pab", "--stats", str(stats)))
    assert code == 0, capsys.readouterr().err
    written = json.loads(stats.read_text())
    assert written["step_cache"] == "pab" and written["cache_unit"] == "attention layer"
    assert written["cache_skipped"] > 0 and written["cache_computed"] > 0 and written["denoiser_calls"] == 12


def test_a_cache_the_family_does_not_take_is_refused_in_one_line(build, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert main(argv_for(build(WAN), out, "--cache", "faster")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cache faster: Wan's denoiser takes first-block, taylorseer, pab" in err[0], err
    assert not out.exists()
