"""The studio's int8 and ONNX switches: shown for Kinemo models, sent with the run, used by the engine."""

import pytest

from app.studio.engine_client import ProcessEngine, ThreadEngine
from app.studio.job_queue import Job
from engine.api.errors import InvalidRequest
from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions


def test_the_switches_go_with_the_run_and_are_remembered(qtbot, window, monkeypatch):
    form = window.form
    form.select_model("kinemo-starter")
    assert form.int8_check.isEnabled() and form.onnx_check.isEnabled()
    assert form.run_options == RunOptions(memory=form.memory)
    form.prompt_edit.setPlainText("a red circle moves right on a black background")
    form.onnx_check.setChecked(True)  # a Kinemo model's ONNX is the whole step in one graph
    added = []
    monkeypatch.setattr(
        window.queue, "add", lambda request, options=None: added.append(options) or Job(request, options=options)
    )
    window.generate()
    assert added == [RunOptions(memory=form.memory, onnx_denoiser=True)]
    state = form.state()
    assert state["int8"] is False and state["onnx_temporal"] is True
    form.restore_state({"int8": True, "onnx_temporal": False})
    assert form.int8_check.isChecked() and not form.onnx_check.isChecked()


def test_the_switches_follow_what_each_model_supports(qtbot, window):
    form = window.form
    form.select_model("kinemo-starter")
    form.int8_check.setChecked(True)  # one or the other for Kinemo models: int8 (checked) greys ONNX out
    assert form.int8_check.isEnabled() and not form.onnx_check.isEnabled()
    form.int8_check.setChecked(False)
    form.onnx_check.setChecked(True)
    assert not form.int8_check.isEnabled() and form.run_options.onnx_denoiser and not form.run_options.onnx_temporal
    # the whole step is one graph: no step cache can skip part of it
    assert not form.switches.cache_combo.isEnabled() and form.run_options.cache == "off"
    form.onnx_check.setChecked(False)
    assert form.switches.cache_combo.isEnabled() and form.int8_check.isEnabled()
    form.onnx_check.setChecked(True)

    form.select_model("wan2.1-t2v-1.3b")  # int8 for every diffusers family; ONNX for AnimateDiff only
    assert form.int8_check.isEnabled() and not form.onnx_check.isEnabled()
    assert not form.run_options.uses_onnx
    form.int8_check.setChecked(True)
    assert form.run_options.quantize == "int8"

    form.select_model("animatediff-v1-5-3")  # one or the other: int8 (checked) greys ONNX out
    assert form.int8_check.isEnabled() and not form.onnx_check.isEnabled()
    form.int8_check.setChecked(False)
    assert form.onnx_check.isEnabled() and form.onnx_check.isChecked()
    assert not form.int8_check.isEnabled()
    assert form.run_options.quantize is None and form.run_options.onnx_temporal is True  # its motion modules
    assert not form.run_options.onnx_denoiser


def test_the_engine_process_builds_the_int8_weights_and_onnx_graphs(tiny_model, cache_dir):
    engine = ProcessEngine()
    try:
        request = GenerationRequest("a red circle", model=tiny_model, steps=2, frames=4, width=64, height=64)
        frames = [
            e
            for e in engine.generate(request, options=RunOptions(quantize="int8", onnx_temporal=True))
            if isinstance(e, Frames)
        ]
        assert frames and frames[0].frames.shape == (4, 64, 64, 3)
        # the engine process made (and cached) both artefacts
        assert any((cache_dir / "quantized").glob("*/manifest.json"))
        assert any((cache_dir / "onnx-temporal").glob("*/manifest.json"))
    finally:
        engine.shutdown()


def test_each_combination_of_switches_gets_its_own_backend(tiny_model, cache_dir):
    engine = ThreadEngine()
    request = GenerationRequest("a red circle", model=tiny_model, steps=2, frames=2, width=64, height=64)
    for options in (RunOptions(), RunOptions(quantize="int8"), RunOptions(memory="low")):
        list(engine.generate(request, options=options))
    plain, int8 = (tiny_model, *RunOptions().backend_key), (tiny_model, *RunOptions(quantize="int8").backend_key)
    assert set(engine._backends) == {plain, int8}  # the memory setting is chosen per run: no backend of its own
    assert engine._backends[int8].options.quantize == "int8"


@pytest.mark.parametrize(
    "options", [{"memory": "huge"}, {"quantize": "int4"}, {"onnx_temporal": "yes"}, {"threads": 2}]
)
def test_bad_run_options_are_refused(options):
    with pytest.raises(InvalidRequest):
        RunOptions.from_dict(options)


def test_fast_on_a_model_whose_fast_version_is_a_lora_adds_it_to_the_list(qtbot, window):
    """wan2.1-t2v-14b's fast version is lightx2v's 4-step LoRA: Fast adds it (4 steps, guidance 1) and takes it
    out again; removing it from the list by hand switches Fast off."""
    form = window.form
    form.select_model("wan2.1-t2v-14b")
    assert form.fast_check.isEnabled() and not form.fast_check.isChecked()
    steps = form.steps_spin.value()
    form.fast_check.setChecked(True)
    sources = [lora.source for lora in form.loras.loras()]
    assert sources == ["lightx2v/Wan2.1-Distill-Loras/wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors"]
    assert (form.steps_spin.value(), form.guidance_spin.value()) == (4, 1.0)
    assert form.model == "wan2.1-t2v-14b"  # the model stays: the LoRA makes it fast
    form.fast_check.setChecked(False)
    assert form.loras.loras() == () and form.steps_spin.value() == steps
    form.fast_check.setChecked(True)
    form.loras.remove(form.loras.rows[0])
    assert not form.fast_check.isChecked()


def test_the_step_cache_is_chosen_per_run_on_a_kept_backend(tiny_model):
    """The cache is not part of a backend's key (changing it must not reload a model), so a kept backend takes
    each run's choice: a run with the cache counts skipped steps, the next one without counts none."""
    engine = ThreadEngine()
    request = GenerationRequest("a red circle", model=tiny_model, steps=4, frames=2, width=64, height=64)
    stats = []
    for cache in ("off", "first-block", "off"):
        events = list(engine.generate(request, options=RunOptions(cache=cache)))
        stats.append(next(e for e in events if type(e).__name__ == "Finished").stats)
    assert len(engine._backends) == 1
    assert "step_cache_steps_computed" not in stats[0] and "step_cache_steps_computed" not in stats[2]
    assert stats[1]["step_cache_steps_computed"] + stats[1]["step_cache_steps_skipped"] == 4
