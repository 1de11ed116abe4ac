"""bench/bench_gpu.py without a GPU: it says it needs CUDA and exits 0; its --cpu-smoke mode runs every row's code
on shrunk models; its budget and table helpers are checked directly."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_on_a_cpu_it_says_it_needs_cuda_and_exits_0():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == "bench_gpu.py needs a CUDA GPU: torch sees none here, so nothing was measured (--cpu-smoke checks the script)"
    )


def test_the_budget_skips_a_row_that_would_overrun(bench):
    assert bench.fits(0, 100, 0)  # no budget
    assert bench.fits(300, 150, 450) and not bench.fits(301, 150, 450)
    plain = bench.row_cost("plain", 2.0, 4)
    assert plain == bench.BUILD_SECONDS + 5 * 2.0
    assert bench.row_cost("sequential_offload", 2.0, 4) == bench.BUILD_SECONDS + 5 * 2.0 * 20
    assert bench.row_cost("compile", 2.0, 4) == plain + bench.COMPILE_SECONDS
    assert bench.row_cost("cache mag", None, 4) == bench.BUILD_SECONDS + 5 * bench.UNKNOWN_STEP  # no plain row yet


def test_the_table_gives_ratios_to_the_family_plain_row(bench):
    mb = bench.MB
    rows = [
        {"family": "ltx-video", "kind": "fp8", "seconds_per_step": 3.0, "peak": 500 * mb},
        {"family": "ltx-video", "kind": "plain", "seconds_per_step": 2.0, "peak": 1000 * mb},
        {"family": "ltx-video", "kind": "cache mag", "note": "refused: --cache mag: no"},
    ]
    text = bench.table(rows).splitlines()
    assert text[0] == bench.HEADER
    assert text[1].split() == ["ltx-video", "plain", "2.000", "1000", "1.00x", "1.00x"]
    assert text[2].split() == ["ltx-video", "fp8", "3.000", "500", "1.50x", "0.50x"]
    assert text[3].endswith("refused: --cache mag: no") and " - " in text[3]


def test_rows_cover_every_kinemo_way_and_each_family_has_its_config(bench):
    assert bench.KINDS[0] == "plain" and "compile" in bench.KINDS and "int8" in bench.KINDS
    assert {f"cache {c}" for c in bench.CACHES} <= set(bench.KINDS)
    assert list(bench.SUITE) == ["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "ltx-video", "cogvideox-2b"]
    assert bench.COGVIDEOX_2B["num_layers"] == 30 and bench.LTX_VIDEO["num_layers"] == 28


def test_cpu_smoke_runs_each_row_and_notes_what_kinemo_refuses(bench, tmp_path):
    out, printed = tmp_path / "rows.json", io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = bench.main(["--cpu-smoke", "--only", "cogvideox", "--steps", "1", "--json", str(out)])
    rows = {r["kind"]: r for r in json.loads(out.read_text())["rows"]}
    assert status == 0, printed.getvalue()
    assert set(rows) == set(bench.KINDS)
    for kind in ("plain", "none", "fp8", "int8", "group_offload"):
        assert rows[kind]["seconds_per_step"] > 0, rows[kind]
    assert rows["compile"]["note"] == "refused: --compile needs a CUDA GPU here"
    for cache in bench.CACHES:  # refused by Kinemo or measured; never an error
        assert "error" not in rows[f"cache {cache}"]
    assert "by family" in printed.getvalue()
