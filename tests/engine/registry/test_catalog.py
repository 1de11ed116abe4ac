import json

import pytest

from engine.api.errors import ModelLoadError
from engine.api.request import GenerationRequest
from engine.registry.catalog import FAMILIES as CATALOG_FAMILIES
from engine.registry.catalog import catalog, find_entry, read_catalog
from engine.registry.families import FAMILIES


def test_every_family_and_task_is_in_the_catalog():
    entries = catalog().values()
    assert set(CATALOG_FAMILIES) == set(FAMILIES) == {e.family for e in entries}
    covered = {(e.family, t) for e in entries for t in e.tasks}
    for family in ("wan", "ltx", "cogvideox"):
        assert {(family, "t2v"), (family, "i2v")} <= covered
    assert ("animatediff", "t2v") in covered and ("svd", "i2v") in covered
    assert any(e.distilled and e.family == "animatediff" for e in entries)
    assert any(e.distilled and e.family == "ltx" for e in entries)


@pytest.mark.parametrize("entry", list(catalog().values()), ids=lambda e: e.id)
def test_catalog_defaults_pass_the_family_rules(entry):
    request = GenerationRequest("a fox", image="x.png" if entry.tasks == ("i2v",) else None, **entry.defaults())
    FAMILIES[entry.family].check(request.validate(), entry.id)
    assert entry.license and entry.vram_gb > 0 and entry.disk_gb > 0
    assert "/" in entry.hub_id


def test_find_entry_by_id_and_hub_id():
    assert find_entry("wan2.1-t2v-1.3b").hub_id == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    assert find_entry("Wan-AI/Wan2.1-T2V-1.3B-Diffusers").id == "wan2.1-t2v-1.3b"
    assert find_entry("nobody/nothing") is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"family": "sora"}, "unknown family"),
        ({"tasks": ["v2v"]}, "tasks"),
        ({"steps": 0}, "steps"),
        ({"colour": "red"}, "unexpected keyword"),
        ({"fast": "missing-id"}, "fast variant"),
    ],
)
def test_bad_catalog_entries_are_named(tmp_path, change, message):
    good = {
        "id": "m",
        "family": "wan",
        "tasks": ["t2v"],
        "hub_id": "a/b",
        "license": "x",
        "steps": 2,
        "guidance": 1.0,
        "width": 32,
        "height": 32,
        "frames": 5,
        "fps": 8,
        "vram_gb": 1,
        "disk_gb": 1,
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": [{**good, **change}]}))
    with pytest.raises(ModelLoadError, match=message):
        read_catalog(path)


def test_unreadable_catalog(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text("{")
    with pytest.raises(ModelLoadError, match="cannot read the model catalog"):
        read_catalog(path)


@pytest.mark.parametrize(
    "family, changes, message",
    [
        ("wan", {"frames": 8}, r"4k\+1 frames; 8 is not one \(use 5 or 9\)"),
        ("ltx", {"frames": 10}, r"8k\+1 frames; 10 is not one \(use 9 or 17\)"),
        ("ltx", {"width": 48}, r"multiple of 32; 48 is not \(use 32 or 64\)"),
        ("cogvideox", {"height": 40}, r"multiple of 16"),
    ],
)
def test_family_rules_name_the_nearest_valid_values(family, changes, message):
    from engine.api.errors import InvalidRequest

    request = GenerationRequest("a fox", **{"frames": 9, "width": 64, "height": 64, **changes})
    with pytest.raises(InvalidRequest, match=message):
        FAMILIES[family].check(request, "m")
