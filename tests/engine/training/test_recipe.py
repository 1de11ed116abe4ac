"""engine.training.recipe and loop: flags build the recipes, checkpoints are written whole."""

from pathlib import Path

import torch

from engine.training.distill import parse_args as parse_distill
from engine.training.loop import Progress, Trainee, resume, save_run, step_draws
from engine.training.recipe import DISTILL_RUN, TRAIN_RUN, DistillRecipe, Recipe
from engine.training.train import parse_args as parse_train


def test_no_flags_give_the_shipped_recipes_and_places():
    recipe, run = parse_train([])
    assert recipe == Recipe()
    assert (run.checkpoint, run.checkpoint_every, run.out) == (
        TRAIN_RUN.checkpoint,
        TRAIN_RUN.checkpoint_every,
        TRAIN_RUN.out,
    )
    recipe, run = parse_distill([])
    assert recipe == DistillRecipe()
    assert (run.checkpoint, run.checkpoint_every, run.out) == (
        DISTILL_RUN.checkpoint,
        DISTILL_RUN.checkpoint_every,
        DISTILL_RUN.out,
    )


def test_flags_reach_their_fields():
    recipe, run = parse_train(
        ["--steps", "7", "--mid-range", "200", "700", "--config", '{"dim": 16}', "--checkpoint", "x.pt"]
    )
    assert (recipe.steps, recipe.mid_range, recipe.model_config, run.checkpoint) == (
        7,
        (200, 700),
        {"dim": 16},
        Path("x.pt"),
    )
    recipe, run = parse_distill(["--steps", "3", "--teacher", "t", "--student-steps", "2", "--seed", "4"])
    assert (recipe.steps, recipe.teacher, recipe.student_steps, recipe.seed) == (3, Path("t"), 2, 4)


def test_the_finishing_stage_applies_from_its_step():
    recipe = Recipe(finish_from=5, lumpy_rate=0.3)
    assert recipe.at_step(4).lumpy_rate == 0.0 and recipe.at_step(4).finish_from == 5
    assert recipe.at_step(5) == recipe


def test_draws_depend_on_seed_and_step_only():
    (rng_a, gen_a), (rng_b, gen_b) = step_draws(2, 9), step_draws(2, 9)
    assert rng_a.random() == rng_b.random() and torch.equal(
        torch.rand(3, generator=gen_a), torch.rand(3, generator=gen_b)
    )
    assert step_draws(2, 10)[0].random() != step_draws(2, 9)[0].random()


def test_a_checkpoint_is_written_whole_and_resumed(tmp_path):
    def trainee(seed):
        torch.manual_seed(seed)
        model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
        return Trainee(model, ema, torch.optim.AdamW(model.parameters()))

    saved = trainee(0)
    path = tmp_path / "runs" / "checkpoint.pt"
    save_run(path, saved, Progress(3, [(3, 0.5, 1.0)], 1.5))
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary file left beside it
    loaded = trainee(1)
    progress = resume(path, loaded, "cpu")
    assert (progress.step, progress.history, progress.seconds, progress.running) == (3, [(3, 0.5, 1.0)], 1.5, None)
    assert torch.equal(loaded.model.weight, saved.model.weight) and torch.equal(loaded.ema.bias, saved.ema.bias)
    assert resume(tmp_path / "none.pt", loaded, "cpu") == Progress()
