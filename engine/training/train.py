"""Train the bundled starter model on procedurally generated clips.

    python -m engine.training.train [--steps N] [--batch B] [--out assets/kinemo-starter]

Most steps see clips as a few frames spread over the whole move (always including the first
frame): neighbouring frames of these clips say almost the same thing, so four frames teach nearly
what sixteen do at a quarter of the cost, and the saved compute buys more clips. Every
--full-every-th step trains on whole 16-frame windows, the way clips are generated.

Resumable: a checkpoint (weights, EMA, optimiser, step) is written every --checkpoint-every steps
and picked up on the next run. The data stream depends only on (seed, step), so a resumed run sees
the clips an uninterrupted run would have seen. At the end the EMA weights are written to --out.

A finishing stage (from --finish-from on) noises some clips from copies with lumpy outlines while
the targets stay clean; the steps before it are the run without that stage, draw for draw, so the
stage can be tried by resuming an earlier run's checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from engine.kinemo.files import save_model
from engine.kinemo.model import KinemoConfig, KinemoDiT
from engine.kinemo.schedule import add_noise, alphas_cumprod, make_betas, velocity
from engine.kinemo.text_encoder import token_batch
from engine.kinemo.vocabulary import BOS, tokenize
from engine.registry.assets import STARTER_DIR
from engine.training.synthetic import make_batch

log = logging.getLogger("kinemo.train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m engine.training.train", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2350)
    p.add_argument("--batch", type=int, default=8, help="clips per step at the full window; short steps take more")
    p.add_argument("--short-frames", type=int, default=4, help="frames per clip on short steps")
    p.add_argument("--full-every", type=int, default=4, help="every N-th step trains on the full window")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument(
        "--object-weight",
        type=float,
        default=3.0,
        help="extra loss weight on pixels at and around the object: what tells a square from a circle is a few "
        "percent of a frame, and a plain MSE (0) lets the model draw every shape as one blob",
    )
    p.add_argument(
        "--blur-rate",
        type=float,
        default=0.5,
        help="share of clips noised from a blurred copy (the target stays sharp): a sampler's early estimates "
        "are blurred, and the model learns to draw the prompt's shape from such a blob (0 for none)",
    )
    p.add_argument("--max-blur", type=float, default=2.0, help="largest blur, Gaussian sigma in pixels")
    p.add_argument(
        "--mid-share",
        type=float,
        default=0.5,
        help="share of clips whose timestep is drawn from --mid-range instead of the whole schedule: a sampled "
        "clip's shape is decided in the middle of the schedule, where a model that reads lumps of noise as "
        "shape loses the prompt's square or triangle (0 for uniform timesteps)",
    )
    p.add_argument("--mid-range", type=int, nargs=2, default=(300, 800), metavar=("LOW", "HIGH"))
    p.add_argument(
        "--input-perturbation",
        type=float,
        default=0.1,
        help="extra noise, as a share of the schedule's own, added to the model's input but not to what it is "
        "asked to undo (Ning et al. 2023): a sampler's inputs carry its own earlier errors, and a model "
        "that trusts its input exactly copies them (0 for none)",
    )
    p.add_argument(
        "--finish-from",
        type=int,
        default=2200,
        metavar="STEP",
        help="the step from which the finishing stage's --lumpy-rate applies; the steps before it are the "
        "recipe without lumpy outlines, step for step",
    )
    p.add_argument(
        "--lumpy-rate",
        type=float,
        default=0.5,
        help="share of object clips, in the finishing stage, noised from a copy whose outline is made lumpy while "
        "the target stays clean: a sampler's estimates grow bumps and notches over its last steps, and a "
        "model that trusts them turns a square into a blob (0 for none)",
    )
    p.add_argument(
        "--lumpy-strength",
        type=float,
        default=0.5,
        help="size of the bumps: the blurred coverage, whose 0.5 level is the outline, is shifted by this x U(0, 1) x a "
        "smooth unit random field, clipped to +-0.45 (about 2 px)",
    )
    p.add_argument(
        "--precision",
        choices=("bf16", "fp32"),
        default="bf16",
        help="autocast of the model's forward pass; weights, optimiser and EMA stay fp32 (bf16: steps take 15-25 %% "
        "less time on this project's CPUs, which have AVX-512 BF16)",
    )
    p.add_argument("--text-dropout", type=float, default=0.1, help="share of captions replaced by the empty prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/starter/checkpoint.pt"))
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--out", type=Path, default=STARTER_DIR)
    p.add_argument("--config", type=json.loads, default={}, help="model config overrides as JSON, e.g. '{\"dim\": 64}'")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    low, high = args.mid_range
    if not 0 <= low < high <= KinemoConfig.num_train_timesteps:
        p.error(f"--mid-range {low} {high} is not inside the schedule's 0..{KinemoConfig.num_train_timesteps}")
    if not 0 <= args.mid_share <= 1:
        p.error(f"--mid-share {args.mid_share} is not a share between 0 and 1")
    if not 0 <= args.lumpy_rate <= 1:
        p.error(f"--lumpy-rate {args.lumpy_rate} is not a share between 0 and 1")
    if args.finish_from < 0 or args.lumpy_strength < 0:
        p.error("--finish-from and --lumpy-strength cannot be negative")
    return args


def caption_ids(captions: list[str], dropout: float, rng: random.Random) -> torch.Tensor:
    return token_batch([(BOS,) if rng.random() < dropout else tokenize(c).ids for c in captions])


def loss_weight(t: torch.Tensor, cumprod: torch.Tensor, gamma: float = 4.0) -> torch.Tensor:
    """Min-SNR-gamma weighting (Hang et al. 2023) of an x_0 loss, expressed as in v space: min(snr, gamma) + 1."""
    snr = cumprod[t] / (1 - cumprod[t])
    return snr.clamp(max=gamma) + 1


def pixel_weights(foreground: torch.Tensor, object_weight: float) -> torch.Tensor:
    """Loss weight per pixel: 1, plus object_weight on the object and 2 pixels around it.

    The object covers a few percent of each frame, and what tells a circle from a square or a
    triangle (corners, edges, the pixels just outside them) is a few percent of that; under a plain
    MSE the model can draw every shape as the same blob and lose almost nothing.
    foreground (b, 1, f, h, w) -> weights of the same shape.
    """
    near = torch.nn.functional.max_pool3d(foreground, (1, 5, 5), stride=1, padding=(0, 2, 2))
    return 1 + object_weight * near


def gaussian_blur(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur every frame of (b, c, f, h, w) with a Gaussian of sigma pixels (separable, reflect padding)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=video.dtype, device=video.device) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    b, c, f, h, w = video.shape
    x = video.permute(0, 2, 1, 3, 4).reshape(b * f * c, 1, h, w)
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, -1, 1))
    return x.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def blurred_inputs(x0: torch.Tensor, rate: float, max_sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x0 (b, c, f, h, w) with rate of its clips blurred by one random sigma in (0.5, max_sigma).

    A sampler's early estimates of x_0 are blurred (they average over what the prompt leaves open), and
    that blur is in x_t at the middle of the schedule. Noising a blurred clip while the target stays
    sharp teaches the model to draw the prompt's shape from such a blob instead of reading the blob's
    roundness as the shape.
    """
    chosen = (torch.rand(x0.shape[0], generator=generator) < rate).to(x0.device)  # (b,)
    sigma = 0.5 + (max_sigma - 0.5) * torch.rand((), generator=generator).item()
    if not chosen.any():
        return x0
    out = x0.clone()
    out[chosen] = gaussian_blur(x0[chosen], sigma)
    return out


def lumpy_inputs(
    x0: torch.Tensor, foreground: torch.Tensor, rate: float, strength: float, generator: torch.Generator
) -> torch.Tensor:
    """x0 (b, 3, f, h, w) with `rate` of its object clips redrawn with lumpy outlines.

    Along a sampler's path the model's estimates grow notches and bumps on the object's outline,
    and a model that reads them as shape turns a square into a blob. A chosen clip's object is
    redrawn, in its own colour on its own background, inside the outline moved by a smooth random
    field, by up to about 2 pixels; the target stays the clean clip. Colour and background are
    coverage-weighted means, which the anti-aliased edge tints by up to 0.1 (of the -1..1 range): a
    shift the noise of the middle timesteps hides, kept because the shipped run was made with it.
    foreground (b, 1, f, h, w) is the object's coverage, 0 in camera clips (never chosen).
    """
    b, _, f, h, w = x0.shape
    chosen = (torch.rand(b, generator=generator) < rate).to(x0.device) & (foreground.flatten(1).amax(1) > 0)  # (b,)
    amount = strength * torch.rand(b, generator=generator).to(x0.device).view(b, 1, 1, 1, 1)
    field = gaussian_blur(torch.randn(b, 1, 1, h, w, generator=generator).to(x0.device), 1.5)  # one field per clip
    field = field / field.flatten(1).std(1).view(b, 1, 1, 1, 1)
    # the outline moves where the blurred coverage crosses 0.5; the clamp keeps the far background and the core as they are
    inside = (gaussian_blur(foreground, 1.5) + (amount * field).clamp(-0.45, 0.45) > 0.5).float()  # (b, 1, f, h, w)
    area = foreground.sum((3, 4), keepdim=True)  # (b, 1, f, 1, 1)
    colour = (x0 * foreground).sum((3, 4), keepdim=True) / area.clamp(min=1e-6)  # (b, 3, f, 1, 1)
    background = (x0 * (1 - foreground)).sum((3, 4), keepdim=True) / (h * w - area).clamp(min=1e-6)
    redrawn = background + inside * (colour - background)
    keep = ~chosen.view(b, 1, 1, 1, 1) | (area < 1)  # frames without the object stay as they are
    return torch.where(keep, x0, redrawn)


def sample_timesteps(
    count: int, total: int, mid_share: float, mid_range: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """count timesteps (count,): uniform over the schedule, except mid_share of them uniform over mid_range."""
    low, high = mid_range  # checked where the command line is read
    anywhere = torch.randint(0, total, (count,), generator=generator)
    middle = torch.randint(low, high, (count,), generator=generator)
    return torch.where(torch.rand(count, generator=generator) < mid_share, middle, anywhere)


def frame_plan(step: int, args: argparse.Namespace, window: int, rng: random.Random) -> tuple[int, torch.Tensor]:
    """How many clips this step trains on and which frames of the window it keeps.

    Every step costs about the same (clips x frames is constant); short steps keep the first
    frame and a random, increasing choice of the others.
    """
    if step % args.full_every == 0 or args.short_frames >= window:
        return args.batch, torch.arange(window)
    kept = sorted([0, *rng.sample(range(1, window), args.short_frames - 1)])
    return args.batch * window // args.short_frames, torch.tensor(kept)


def training_step(
    model,
    batch,
    ids,
    cumprod,
    generator,
    device,
    frame_indices: torch.Tensor | None = None,
    object_weight: float = 0.0,
    blur_rate: float = 0.0,
    max_blur: float = 2.0,
    mid_share: float = 0.0,
    mid_range: tuple[int, int] = (300, 800),
    input_perturbation: float = 0.0,
    bf16: bool = False,
    lumpy_rate: float = 0.0,
    lumpy_strength: float = 0.5,
) -> torch.Tensor:
    """The diffusion loss for one batch of clips, for the model's prediction type."""
    video, foreground = batch.video, batch.foreground
    if frame_indices is not None:
        video, foreground = video[:, :, frame_indices], foreground[:, :, frame_indices]
    x0 = (video * 2 - 1).to(device)  # (b, 3, f, h, w) in [-1, 1]
    weights = pixel_weights(foreground.to(device), object_weight)  # (b, 1, f, h, w)
    b = x0.shape[0]
    noise = torch.randn(x0.shape, generator=generator).to(device)
    if mid_share:
        t = sample_timesteps(b, len(cumprod), mid_share, mid_range, generator).to(device)
    else:  # exactly the draws of recipes made before --mid-share, so their runs still reproduce
        t = torch.randint(0, len(cumprod), (b,), generator=generator).to(device)
    first_frame = x0[:, :, 0]  # (b, 3, h, w)
    signal = lumpy_inputs(x0, foreground.to(device), lumpy_rate, lumpy_strength, generator) if lumpy_rate else x0
    signal = blurred_inputs(signal, blur_rate, max_blur, generator) if blur_rate else signal
    if input_perturbation:  # the input's noise is noise + gamma * xi; the x_0 target (or the epsilon one) is not
        x_t = add_noise(
            signal, noise + input_perturbation * torch.randn(x0.shape, generator=generator).to(device), t, cumprod
        )
    else:
        x_t = add_noise(signal, noise, t, cumprod)
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
        cond = model.encode(ids.to(device), first_frame, batch.image_mask.to(device))
        prediction = model(x_t, t, cond, None if frame_indices is None else frame_indices.to(device)).float()
    kind = model.config.prediction_type
    if kind == "sample":
        per_clip = ((prediction - x0).pow(2) * weights).flatten(1).mean(1)
        return (per_clip * loss_weight(t, cumprod)).mean()
    target = velocity(x0, noise, t, cumprod) if kind == "v_prediction" else noise
    return ((prediction - target).pow(2) * weights).mean()


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def resume(path: Path, model, ema, optimiser, device) -> tuple[int, list, float]:
    """Load a checkpoint written by save_run into model, EMA and optimiser; (step, history, seconds)."""
    if not path.exists():
        return 0, [], 0.0
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimiser.load_state_dict(state["optimiser"])
    log.info("resumed from %s at step %d", path, state["step"])
    return state["step"], state["history"], state["seconds"]


def save_run(path: Path, model, ema, optimiser, step: int, history: list, seconds: float) -> None:
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": step,
            "history": history,
            "seconds": seconds,
        },
    )


def optimise(model, ema, optimiser, loss: torch.Tensor, ema_decay: float) -> None:
    """One optimiser step with gradients clipped to norm 1, then the EMA follows."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimiser.step()
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - ema_decay)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    config = KinemoConfig(**args.config)
    model = KinemoDiT(config).to(device)
    ema = KinemoDiT(config).to(device).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    cumprod = alphas_cumprod(
        make_betas(config.beta_schedule, config.num_train_timesteps, snr_scale=config.snr_scale)
    ).to(device)

    step, history, seconds = resume(args.checkpoint, model, ema, optimiser, device)

    log.info("model: %.2fM parameters, %s", sum(p.numel() for p in model.parameters()) / 1e6, config)
    bar = tqdm(total=args.steps, initial=step, desc="train", mininterval=5)
    running = None
    while step < args.steps:
        started = time.perf_counter()
        rng = random.Random(args.seed * 1_000_003 + step)
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        clips, frame_indices = frame_plan(step, args, config.max_frames, rng)
        batch = make_batch(rng, clips, frames=config.max_frames)
        ids = caption_ids(batch.captions, args.text_dropout, rng)
        for group in optimiser.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)

        loss = training_step(
            model,
            batch,
            ids,
            cumprod,
            generator,
            device,
            frame_indices,
            object_weight=args.object_weight,
            blur_rate=args.blur_rate,
            max_blur=args.max_blur,
            mid_share=args.mid_share,
            mid_range=tuple(args.mid_range),
            input_perturbation=args.input_perturbation,
            bf16=args.precision == "bf16",
            lumpy_rate=args.lumpy_rate if step >= args.finish_from else 0.0,
            lumpy_strength=args.lumpy_strength,
        )
        optimise(model, ema, optimiser, loss, min(args.ema, (1 + step) / (10 + step)))

        step += 1
        seconds += time.perf_counter() - started
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if step % 10 == 0:
            history.append((step, running, round(seconds, 1)))
        if step % args.checkpoint_every == 0 or step == args.steps:
            save_run(args.checkpoint, model, ema, optimiser, step, history, seconds)
    bar.close()
    training = {
        "steps": step,
        "batch": args.batch,
        "short_frames": args.short_frames,
        "full_every": args.full_every,
        "lr": args.lr,
        "ema": args.ema,
        "seed": args.seed,
        "object_weight": args.object_weight,
        "blur_rate": args.blur_rate,
        "max_blur": args.max_blur,
        "mid_share": args.mid_share,
        "mid_range": list(args.mid_range),
        "input_perturbation": args.input_perturbation,
        "finish_from": args.finish_from,
        "lumpy_rate": args.lumpy_rate,
        "lumpy_strength": args.lumpy_strength,
        "precision": args.precision,
        "train_seconds": round(seconds, 1),
        "final_loss": running,
        "device": str(device),
    }
    save_model(ema, args.out, {"_training": training})
    log.info("wrote %s after %d steps (%.0f s of training)", args.out, step, seconds)


if __name__ == "__main__":
    main()
