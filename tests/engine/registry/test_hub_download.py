"""engine.registry.hub over real HTTP: huggingface-hub downloads a tiny pipeline from a loopback hub.

What huggingface-hub (2.x) was seen to do here, and these tests hold it to:
- snapshot_download asks for the model info, then the recursive file tree, then HEAD + GET per file;
  LFS files' HEAD stops at the 302 to the CDN (another origin) and takes X-Linked-Etag/-Size from it.
- a connection dropped mid-file is retried in the same call after 1 s: with `Range: bytes=N-`
  where N is the bytes written so far, counted in whole DOWNLOAD_CHUNK_SIZE (10 MiB) chunks, so a
  file cut before its first 10 MiB is fetched again whole, with no Range.
- a download stopped by its tqdm (the studio's cancel) keeps the files it finished and deletes the
  partial one; the next pull fetches only what is missing, the unfinished file from byte 0.
"""

import hashlib
import json

import pytest
from hub_server import serve_hub
from huggingface_hub import constants
from tiny_diffusers.cases import CASES

from app.cli import main
from engine.api.errors import ModelLoadError
from engine.registry.hub import HubModel, disk_bytes, local_paths, pull, remove

WAN = next(case for case in CASES if case.name == "wan-t2v")
REPO = "tiny-org/wan-t2v"
MODEL = HubModel(REPO, REPO)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with serve_hub(tmp_path, monkeypatch) as server:
        yield server


@pytest.fixture
def wan_repo(hub, build):
    """The tiny Wan pipeline (safetensors, as save_pretrained writes it) served as REPO."""
    return hub.add_repo(REPO, build(WAN))


def _blob_names(hub, repo_id=REPO):
    blobs = hub.cache / f"models--{repo_id.replace('/', '--')}" / "blobs"
    return sorted(p.name for p in blobs.iterdir()) if blobs.is_dir() else []


def test_a_pull_over_http_is_found_on_disk_and_generates(hub, wan_repo, tmp_path, capsys):
    assert local_paths(MODEL) is None
    folder, adapter = pull(MODEL)
    assert adapter is None and folder.parent.name == "snapshots" and folder.name == wan_repo.sha
    assert local_paths(MODEL) == (folder, None)
    for path, file in wan_repo.files.items():
        assert (folder / path).read_bytes() == file.data
    assert _blob_names(hub) == sorted(f.etag for f in wan_repo.files.values())  # sha256 for LFS, git oid else

    requests = hub.seen()
    assert [r.path for r in requests[:2]] == [
        f"/api/models/{REPO}/revision/main",
        f"/api/models/{REPO}/tree/{wan_repo.sha}",
    ]
    lfs = [f.path for f in wan_repo.files.values() if f.lfs]
    assert lfs and {(r.filename, r.status) for r in requests if r.method == "HEAD"} == {
        (p, 302 if p in lfs else 200) for p in wan_repo.files
    }
    assert sorted(r.filename for r in hub.seen("cdn")) == sorted(lfs)  # the LFS bytes came from the CDN
    assert all(r.range is None for r in requests)

    before = len(hub.seen())
    assert pull(MODEL)[0] == folder  # on disk: only the model info is asked again (the file list is cached)
    assert [r.path for r in hub.seen()[before:]] == [f"/api/models/{REPO}/revision/main"]

    clip = tmp_path / "clip"
    argv = ["generate", "a fox", "-o", str(clip), "--format", "png", "--model", REPO, "--frames", "5"]
    code = main([*argv, "--width", "32", "--height", "32", "--steps", "2", "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert len(list(clip.glob("*.png"))) == 5
    assert json.loads((clip / "kinemo.json").read_text())["request"]["model"] == REPO
    assert len(hub.seen()) == before + 1, "generate found the model on disk and downloaded nothing"

    size = sum(len(f.data) for f in wan_repo.files.values())
    assert disk_bytes(MODEL) == size  # the cache the download went to is the one measured
    assert remove(MODEL) == (size, [REPO]) and local_paths(MODEL) is None


def test_pickled_weights_in_the_repo_are_not_pulled_and_the_model_is_still_on_disk(hub, build):
    hub.add_repo(REPO, build(WAN))
    pickled = hub.repo_folder(REPO) / "transformer" / "diffusion_pytorch_model.bin"
    pickled.write_bytes(b"not a pickle, never fetched")
    repo = hub.add_repo(REPO)
    assert "transformer/diffusion_pytorch_model.bin" in repo.files

    folder, _ = pull(MODEL)
    assert not (folder / "transformer" / "diffusion_pytorch_model.bin").exists()
    assert not [r for r in hub.seen() if r.filename and r.filename.endswith(".bin")]
    # huggingface-hub checks a cached snapshot against the file list it saved; the .bin is not missing
    assert local_paths(MODEL) == (folder, None)


@pytest.mark.parametrize("chunk", [16 * 1024, constants.DOWNLOAD_CHUNK_SIZE], ids=["16KiB-chunks", "default-chunks"])
def test_a_dropped_connection_is_resumed_within_the_pull(hub, wan_repo, monkeypatch, chunk):
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk)
    largest = wan_repo.largest
    cut = 4 * 16 * 1024
    assert len(largest.data) > cut + 16 * 1024
    hub.cut(REPO, largest.path, cut)

    folder, _ = pull(MODEL)

    assert (folder / largest.path).read_bytes() == largest.data
    first, second = hub.gets(REPO, largest.path)
    assert (first.range, first.sent) == (None, cut)
    written = cut // chunk * chunk  # what huggingface-hub had written: whole chunks only
    if written:
        assert (second.range, second.status, second.sent) == (f"bytes={written}-", 206, len(largest.data) - written)
    else:  # the cut bytes never left httpx's chunk buffer: the whole file again, no Range
        assert (second.range, second.status, second.sent) == (None, 200, len(largest.data))
    assert local_paths(MODEL) == (folder, None)
    assert hashlib.sha256((folder / largest.path).read_bytes()).hexdigest() == largest.sha256


def test_a_cancelled_pull_stops_and_the_next_one_fetches_only_the_rest(hub, wan_repo):
    from app.studio.downloads import DownloadCancelled, DownloadMeter, progress_tqdm

    largest = wan_repo.largest
    meter = DownloadMeter()
    hub.on_get(REPO, largest.path, meter.cancel)  # the user presses Cancel as its bytes start to arrive

    with pytest.raises(DownloadCancelled):
        pull(MODEL, tqdm_class=progress_tqdm(meter))

    assert local_paths(MODEL) is None
    snapshot = hub.cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / wan_repo.sha
    assert not (snapshot / largest.path).exists()
    kept = _blob_names(hub)
    assert largest.etag not in kept and not [name for name in kept if name.endswith(".incomplete")]
    finished = {f.path for f in wan_repo.files.values() if f.etag in kept}

    again = DownloadMeter()
    folder, _ = pull(MODEL, tqdm_class=progress_tqdm(again))
    assert local_paths(MODEL) == (folder, None) and (folder / largest.path).read_bytes() == largest.data
    done, total = again.progress()
    assert done == total > 0
    fetched = [hub.gets(REPO, path) for path in wan_repo.files]
    assert all(len(gets) == 1 for path, gets in zip(wan_repo.files, fetched) if path in finished)
    assert [r.range for r in hub.gets(REPO, largest.path)] == [None, None]  # from byte 0 again


def test_a_gated_repo_needs_the_right_token(hub, build):
    repo = hub.add_repo("tiny-org/gated", build(WAN), token="hf_right")
    gated = HubModel("tiny-org/gated", "tiny-org/gated")

    for token in (None, "hf_wrong"):
        with pytest.raises(ModelLoadError) as caught:
            pull(gated, token=token)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("tiny-org/gated is gated: accept its licence")
        assert "--token YOUR_TOKEN" in message and "HF_TOKEN" in message
    statuses = {r.status for r in hub.seen() if r.filename}
    assert statuses == {401, 403} and local_paths(gated) is None

    folder, _ = pull(gated, token="hf_right")
    assert local_paths(gated) == (folder, None)
    assert all(f.read_bytes() == repo.files[f.relative_to(folder).as_posix()].data for f in folder.rglob("*.json"))
    resolves = [r for r in hub.seen("hub") if r.filename and r.status in (200, 302)]
    assert resolves and all(r.authorization == "Bearer hf_right" for r in resolves)
    assert hub.seen("cdn") and all(r.authorization is None for r in hub.seen("cdn")), "no token to the CDN"


def test_a_missing_repo_and_a_stopped_hub_are_one_line_each(hub, tmp_path):
    missing = HubModel("tiny-org/nothing", "tiny-org/nothing")
    with pytest.raises(ModelLoadError, match=r"^tiny-org/nothing was not found on the hub \(a typo"):
        pull(missing)

    hub.stop()
    with pytest.raises(ModelLoadError) as caught:
        pull(MODEL)
    assert str(caught.value).startswith(f"cannot download {REPO}: the hub cannot be reached (")
    assert "\n" not in str(caught.value)
