"""The studio's step-cache switch: it offers what the selected model takes, goes with the run, and is remembered."""

from app.studio.job_queue import Job
from engine.api.run_options import RunOptions
from engine.registry.families import FAMILIES


def offered(combo) -> set[str]:
    items = combo.model()
    return {combo.itemData(row) for row in range(combo.count()) if items.item(row).isEnabled()}


def choose(combo, value: str) -> None:
    combo.setCurrentIndex(combo.findData(value))


def test_the_cache_switch_follows_what_each_model_takes(qtbot, window):
    combo = window.form.switches.cache_combo
    window.form.select_model("cogvideox-2b")
    assert combo.isEnabled() and offered(combo) == {"off", "auto", *FAMILIES["cogvideox"].step_caches}
    assert "faster" in offered(combo) and "mag" not in offered(combo)

    window.form.select_model("wan2.1-t2v-1.3b")
    assert offered(combo) == {"off", "auto", "first-block", "taylorseer", "pab"}
    choose(combo, "pab")
    assert window.form.run_options.cache == "pab"

    window.form.select_model("animatediff-v1-5-3")  # a UNet: diffusers' caches hook transformers only
    assert not combo.isEnabled() and window.form.run_options.cache == "off"
    assert "no step cache" in combo.toolTip()

    window.form.select_model("ltx-2")  # TaylorSeer only: pab stays chosen but is not sent
    assert combo.isEnabled() and offered(combo) == {"off", "auto", "taylorseer"}
    assert window.form.run_options.cache == "off"


def test_the_chosen_cache_goes_with_the_run_and_is_remembered(qtbot, window, monkeypatch):
    form = window.form
    combo = form.switches.cache_combo
    form.select_model("ltx-video")
    choose(combo, "first-block")
    form.prompt_edit.setPlainText("a fox runs through snow")
    added = []
    monkeypatch.setattr(
        window.queue, "add", lambda request, options=None: added.append(options) or Job(request, options=options)
    )
    window.generate()
    assert added and added[0].cache == "first-block"
    assert added[0] == RunOptions(memory=form.memory, cache="first-block", quantize=added[0].quantize)

    state = form.state()
    assert state["cache"] == "first-block"
    choose(combo, "off")
    form.restore_state(state)
    assert combo.currentData() == "first-block" and form.run_options.cache == "first-block"
