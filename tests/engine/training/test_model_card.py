import json
from pathlib import Path

from engine.training.model_card import card

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "kinemo-starter"


def _folder(tmp_path, **training):
    config = json.loads((ASSETS / "config.json").read_text())
    config["_training"] = {**config["_training"], **training}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 2_000_000)
    return tmp_path


def test_card_states_the_training_recipe_it_was_made_with(tmp_path):
    evaluation = json.loads((ASSETS / "evaluation.json").read_text())
    text = card(
        _folder(tmp_path, mid_share=0.5, mid_range=[300, 800], input_perturbation=0.1, precision="bf16"),
        evaluation,
        "python -m engine.training.train",
    )
    assert "50 % of timesteps drawn from 300-800" in text
    assert "0.1 x an extra Gaussian that the target leaves out" in text
    assert "forward passes in bf16" in text and "2.0 MB of fp32 safetensors" in text
    assert f"shape {evaluation['text_to_video']['shape_accuracy']:.1f} %" in text


def test_card_states_the_finishing_stage_only_when_the_run_reached_it(tmp_path):
    evaluation = json.loads((ASSETS / "evaluation.json").read_text())
    text = card(
        _folder(tmp_path, steps=2350, finish_from=2200, lumpy_rate=0.5), evaluation, "python -m engine.training.train"
    )
    assert (
        "over the last 150 steps (from step 2200), 50 % of object clips are noised from a copy whose outline is made lumpy"
        in text
    )
    for unreached in (
        {"steps": 2000, "finish_from": 2200, "lumpy_rate": 0.5},
        {"steps": 2350, "finish_from": 2200, "lumpy_rate": 0.0},
    ):
        assert (
            "lumpy"
            not in card(_folder(tmp_path, **unreached), evaluation, "python -m engine.training.train").split(
                "## Limits"
            )[0]
        )


def test_card_of_an_older_recipe_says_uniform_timesteps_and_no_perturbation(tmp_path):
    evaluation = json.loads((ASSETS / "evaluation.json").read_text())
    folder = _folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    for key in (
        "mid_share",
        "mid_range",
        "input_perturbation",
        "precision",
        "finish_from",
        "lumpy_rate",
        "lumpy_strength",
    ):
        config["_training"].pop(key, None)
    (folder / "config.json").write_text(json.dumps(config))
    text = card(folder, evaluation, "python -m engine.training.train")
    assert (
        "timesteps uniform over the schedule" in text
        and "input perturbation" not in text
        and "outline is made lumpy" not in text
    )
    assert "forward passes in fp32" in text
