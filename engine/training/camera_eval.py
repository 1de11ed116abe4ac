"""Measuring photo animation (image-to-video camera moves) from the frames themselves. numpy and PIL only.

Nothing here asks the model what it meant to do: the camera move is read off the pixels by estimating, between
frames, the global similarity (isotropic scale about the frame centre plus a translation) that maps one frame
onto the next.

The estimator (`estimate_similarity`):

1. both frames -> grayscale, resized so the longer side is at most 256 pixels, and a Gaussian pyramid of it
   (each level half the size of the one below, down to about 40 pixels on the longer side); every level also
   keeps its detail (itself minus its blur), on which alignments are scored by normalised cross-correlation
   over the overlap (smooth shading correlates with almost anything; detail does not);
2. on the coarsest level, a start: for each of 13 zooms from 0.55x to 1.8x the first frame is rescaled about
   its centre and phase-correlated (Hann window) with the second, which gives the translation for that zoom;
   the zoom whose alignment scores best wins (each zoom pays 0.1 of correlation per unit of |log zoom|, so no
   zoom wins a near-tie, and an alignment must overlap 30 % of both frames);
3. Gauss-Newton Lucas-Kanade refines (scale, tx, ty), with a gain and offset of brightness, on every level
   from the coarsest to the finest, with Huber weights so that borders a model fills (by mirroring, or by
   inventing content) and things that move on their own count as outliers instead of bending the fit; a
   level's refinement is kept only when it scores better than where it started. It runs from the winner of
   step 2 and from the best translation without zoom, and the better-scored result wins;
4. that result stands only when its detail correlates at least 0.2 and it removes at least 10 % of the misfit
   (1 - correlation) that no motion leaves; otherwise the answer is no motion, so flat frames, unrelated
   frames and frames of noise read as "no motion" instead of a wild zoom.

A move of 35 % of the width or a zoom of 1.6x between two frames is within reach of step 2; `classify_move`
nevertheless estimates between consecutive frames (small moves, where the fit is most accurate and the content
has changed least) and composes the similarities into the clip's total move.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from engine.util.frames import psnr
from engine.util.images import fit_to_size, load_image

MOVES: tuple[str, ...] = (
    "pans left",
    "pans right",
    "pans up",
    "pans down",
    "zooms in",
    "zooms out",
    "stays still",
)
# A clip "stays still" when its total translation is under 2 % of the frame width AND its total zoom is under
# 3 % (|log scale| < 0.03). Otherwise the larger of the two, each measured in units of its own threshold, names
# the move: a zoom when |log scale| / 0.03 > |translation| / (0.02 * width), else a pan along the axis with the
# larger translation.
STILL_TRANSLATION = 0.02  # fraction of the frame width
STILL_LOG_SCALE = 0.03
WORK_SIZE = 256  # the estimator's longer side, pixels
COARSEST = 40  # the pyramid stops when halving would take the longer side below this
ZOOM_CANDIDATES = np.exp(np.linspace(math.log(0.55), math.log(1.8), 13))
DETAIL_SIGMA = 2.0  # alignments are scored on each level minus its Gaussian blur (sigma 2 pixels): the detail
MIN_OVERLAP = 0.3  # an alignment must overlap this fraction of both frames
MIN_CORRELATION = 0.2  # the detail of a motion's overlap must correlate at least this well...
MIN_GAIN = 0.1  # ...and remove this fraction of the misfit (1 - correlation) that no motion leaves
ZOOM_PRIOR = 0.1  # correlation a candidate zoom gives up per unit of |log zoom|: no zoom wins near-ties
FLICKER_EPSILON = 0.5  # grey levels: the floor of flicker's median, so a still clip scores 0, not 0/0
PHOTOGRAPHS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")

Similarity = tuple[float, float, float]  # (scale, tx, ty): x_b = centre + scale * (x_a - centre) + (tx, ty)
Level = tuple[np.ndarray, np.ndarray]  # a pyramid level: (smoothed grey image, its detail)


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


def gray(img: np.ndarray) -> np.ndarray:
    """(h, w, 3) or (h, w) -> (h, w) float64 luminance in grey levels (0..255)."""
    img = np.asarray(img, dtype=np.float64)
    return img if img.ndim == 2 else img[..., :3] @ np.array([0.299, 0.587, 0.114])


def _resize(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(plane.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


def _blur(plane: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Separable Gaussian blur, borders mirrored."""
    radius = max(1, int(3 * sigma))
    kernel = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    h, w = plane.shape
    padded = np.pad(plane, radius, mode="symmetric")
    rows = sum(k * padded[:, i : i + w] for i, k in enumerate(kernel))
    return sum(k * rows[i : i + h] for i, k in enumerate(kernel))


def _pyramid(plane: np.ndarray) -> list[Level]:
    """Finest first; the finest level's longer side is at most WORK_SIZE. Each level is (smoothed, detail)."""
    h, w = plane.shape
    factor = min(1.0, WORK_SIZE / max(h, w))
    level = _resize(plane, max(2, round(w * factor)), max(2, round(h * factor))) if factor < 1 else plane
    planes = [_blur(level)]
    while max(planes[-1].shape) // 2 >= COARSEST and min(planes[-1].shape) // 2 >= 8:
        h, w = planes[-1].shape
        planes.append(_blur(_resize(planes[-1], w // 2, h // 2)))
    return [(p, p - _blur(p, DETAIL_SIGMA)) for p in planes]


def _sample(plane: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples at (xs, ys), coordinates clamped to the image."""
    h, w = plane.shape
    xs, ys = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    x0, y0 = np.minimum(xs.astype(int), w - 2 if w > 1 else 0), np.minimum(ys.astype(int), h - 2 if h > 1 else 0)
    fx, fy = xs - x0, ys - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = plane[y0, x0] * (1 - fx) + plane[y0, x1] * fx
    bottom = plane[y1, x0] * (1 - fx) + plane[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _warp_coordinates(shape: tuple[int, int], scale: float, tx: float, ty: float):
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return xs - cx, ys - cy, cx + scale * (xs - cx) + tx, cy + scale * (ys - cy) + ty


# ----------------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------------


def _phase_correlate(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Translation (tx, ty) with b(x) ~ a(x - t), and the height of the correlation peak."""
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.fft2((a - a.mean()) * window), np.fft.fft2((b - b.mean()) * window)
    cross = fb * np.conj(fa)
    corr = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = corr.shape

    def refine(c_minus: float, c0: float, c_plus: float) -> float:
        denom = c_minus - 2 * c0 + c_plus
        return 0.0 if denom == 0 else float(np.clip(0.5 * (c_minus - c_plus) / denom, -0.5, 0.5))

    dx = px + refine(corr[py, (px - 1) % w], corr[py, px], corr[py, (px + 1) % w])
    dy = py + refine(corr[(py - 1) % h, px], corr[py, px], corr[(py + 1) % h, px])
    dx = dx - w if dx > w / 2 else dx
    dy = dy - h if dy > h / 2 else dy
    return float(dx), float(dy), float(corr[py, px])


def _overlap_correlation(a: np.ndarray, b: np.ndarray, p: Similarity) -> float:
    """Normalised cross-correlation of a with b warped by p over their overlap; -1 when the overlap covers less
    than MIN_OVERLAP of either frame."""
    _, _, xb, yb = _warp_coordinates(a.shape, *p)
    h, w = b.shape
    valid = (xb >= 0) & (xb <= w - 1) & (yb >= 0) & (yb <= h - 1)
    if valid.mean() < MIN_OVERLAP or valid.mean() * p[0] ** 2 < MIN_OVERLAP:
        return -1.0
    va, vb = a[valid], _sample(b, xb[valid], yb[valid])
    va, vb = va - va.mean(), vb - vb.mean()
    return float((va * vb).sum() / (np.sqrt((va**2).sum() * (vb**2).sum()) + 1e-9))


def _initial_guesses(a: Level, b: Level) -> list[Similarity]:
    """The best of ZOOM_CANDIDATES, each with the translation phase correlation finds for it, and no zoom."""
    rel_x, rel_y, _, _ = _warp_coordinates(a[0].shape, 1.0, 0.0, 0.0)
    cx, cy = (a[0].shape[1] - 1) / 2, (a[0].shape[0] - 1) / 2
    unzoomed = (1.0, *_phase_correlate(a[0], b[0])[:2])
    best, best_score = unzoomed, _overlap_correlation(a[1], b[1], unzoomed)
    for scale in ZOOM_CANDIDATES.tolist():
        scaled = _sample(a[0], cx + rel_x / scale, cy + rel_y / scale)  # a grown by `scale` about its centre
        dx, dy, _ = _phase_correlate(scaled, b[0])
        score = _overlap_correlation(a[1], b[1], (scale, dx, dy)) - ZOOM_PRIOR * abs(math.log(scale))
        if score > best_score:
            best, best_score = (scale, dx, dy), score
    return [unzoomed] if best == unzoomed else [best, unzoomed]


def _refine(a: np.ndarray, b: np.ndarray, p: Similarity, iterations: int = 12) -> Similarity:
    """Gauss-Newton on sum of huber(b(W(x; p)) - gain * a(x) - offset) over the overlap."""
    gy_b, gx_b = np.gradient(b)
    rel_x, rel_y, _, _ = _warp_coordinates(a.shape, 1.0, 0.0, 0.0)
    h, w = b.shape
    params = np.array([p[0], p[1], p[2], 1.0, 0.0])
    for _ in range(iterations):
        scale, tx, ty, gain, offset = params
        _, _, xb, yb = _warp_coordinates(a.shape, scale, tx, ty)
        valid = (xb >= 0) & (xb <= w - 1) & (yb >= 0) & (yb <= h - 1)
        if valid.sum() < 16:
            break
        xv, yv = xb[valid], yb[valid]
        gx, gy = _sample(gx_b, xv, yv), _sample(gy_b, xv, yv)
        av = a[valid]
        residual = _sample(b, xv, yv) - gain * av - offset
        jac = np.stack([gx * rel_x[valid] + gy * rel_y[valid], gx, gy, -av, -np.ones_like(av)], axis=1)
        sigma = 1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-6
        k = 1.345 * sigma
        weight = np.where(np.abs(residual) <= k, 1.0, k / np.maximum(np.abs(residual), 1e-12))
        hessian = (jac * weight[:, None]).T @ jac
        hessian += np.diag(np.diag(hessian)) * 1e-6 + np.eye(5) * 1e-9
        step = np.linalg.solve(hessian, -(jac * weight[:, None]).T @ residual)
        params += step
        params[0] = float(np.clip(params[0], 0.2, 5.0))
        if abs(step[0]) < 1e-4 and abs(step[1]) < 1e-2 and abs(step[2]) < 1e-2:
            break
    return float(params[0]), float(params[1]), float(params[2])


def _coarse_to_fine(pa: list[Level], pb: list[Level], p: Similarity) -> Similarity:
    """p (on the coarsest level) refined level by level; a refinement that aligns the detail worse is dropped."""
    for index in range(len(pa) - 1, -1, -1):
        (a, a_detail), (b, b_detail) = pa[index], pb[index]
        refined = _refine(a, b, p)
        if _overlap_correlation(a_detail, b_detail, refined) >= _overlap_correlation(a_detail, b_detail, p):
            p = refined
        if index:
            (h, w), (h2, w2) = a.shape, pa[index - 1][0].shape
            p = (p[0], p[1] * w2 / w, p[2] * h2 / h)
    return p


def estimate_similarity(a: np.ndarray, b: np.ndarray) -> Similarity:
    """(scale, tx, ty) mapping frame a onto frame b: a's pixel x shows up in b at centre + scale * (x - centre) + t.

    t is in b's pixels (x to the right, y down); scale > 1 means the content grew. The answer is no motion,
    (1, 0, 0), when the best similarity's detail correlates less than MIN_CORRELATION or removes less than
    MIN_GAIN of the misfit (1 - correlation) that no motion leaves: flat, unrelated or pure-noise frames."""
    pa, pb = _pyramid(gray(a)), _pyramid(gray(b))
    if pa[0][0].shape != pb[0][0].shape:
        raise ValueError(f"frames of different sizes: {a.shape[:2]} and {b.shape[:2]}")
    fits = [_coarse_to_fine(pa, pb, guess) for guess in _initial_guesses(pa[-1], pb[-1])]
    best_score, p = max((_overlap_correlation(pa[0][1], pb[0][1], p), p) for p in fits)
    still = _overlap_correlation(pa[0][1], pb[0][1], (1.0, 0.0, 0.0))
    if best_score < MIN_CORRELATION or 1 - best_score > (1 - MIN_GAIN) * (1 - still):
        return 1.0, 0.0, 0.0
    (h, w), (fh, fw) = a.shape[:2], pa[0][0].shape
    return p[0], p[1] * w / fw, p[2] * h / fh


def compose(first: Similarity, second: Similarity) -> Similarity:
    """The similarity of applying `first`, then `second` (both about the same centre)."""
    s1, x1, y1 = first
    s2, x2, y2 = second
    return s1 * s2, s2 * x1 + x2, s2 * y1 + y2


def clip_motion(frames: np.ndarray) -> Similarity:
    """The similarity from the first frame to the last, composed from consecutive frames."""
    total: Similarity = (1.0, 0.0, 0.0)
    for a, b in zip(frames[:-1], frames[1:]):
        total = compose(total, estimate_similarity(a, b))
    return total


def move_of(motion: Similarity, width: int) -> str:
    """The name of a clip's total similarity (see STILL_TRANSLATION for the thresholds)."""
    scale, tx, ty = motion
    zoom = abs(math.log(max(scale, 1e-6))) / STILL_LOG_SCALE
    pan = math.hypot(tx, ty) / (STILL_TRANSLATION * width)
    if zoom < 1 and pan < 1:
        return "stays still"
    if zoom > pan:
        return "zooms in" if scale > 1 else "zooms out"
    if abs(tx) >= abs(ty):  # the camera turns left, so the picture slides right
        return "pans left" if tx > 0 else "pans right"
    return "pans up" if ty > 0 else "pans down"  # the camera tilts up, so the picture slides down


def classify_move(frames: np.ndarray) -> str:
    """One of MOVES for a (f, h, w, 3) uint8 clip; a clip of one frame stays still."""
    frames = np.asarray(frames)
    if len(frames) < 2:
        return "stays still"
    return move_of(clip_motion(frames), frames.shape[2])


# ----------------------------------------------------------------------------------------------
# Quality of the frames
# ----------------------------------------------------------------------------------------------


def sharpness(img: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image (grey levels squared; interior pixels)."""
    g = gray(img)
    if min(g.shape) < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def sharpness_ratio(frame0: np.ndarray, picture: np.ndarray) -> float:
    """sharpness(frame0) / sharpness(picture): 1 when the first frame keeps the picture's detail, < 1 blurrier."""
    return sharpness(frame0) / max(sharpness(picture), 1e-9)


def flicker(frames: np.ndarray) -> float:
    """Largest frame-to-frame mean absolute change / the median of them (the median floored at 0.5 grey levels).

    A smooth clip scores about 1, a clip that jumps or flashes once scores high; a still clip scores 0 (its
    changes are all 0), and so does a clip of fewer than two frames."""
    frames = np.asarray(frames, dtype=np.float32)
    if len(frames) < 2:
        return 0.0
    changes = np.abs(np.diff(frames, axis=0)).reshape(len(frames) - 1, -1).mean(axis=1)
    return float(changes.max() / max(float(np.median(changes)), FLICKER_EPSILON))


# ----------------------------------------------------------------------------------------------
# Pictures and the evaluation
# ----------------------------------------------------------------------------------------------


def fit_picture(path: str | Path, width: int, height: int) -> np.ndarray:
    """The picture (EXIF orientation honoured) centre-cropped to width:height and resized (LANCZOS) to it."""
    return fit_to_size(load_image(path), width, height)


def photographs() -> list[Path]:
    """scikit-image's bundled colour photographs that are on disk (nothing is downloaded)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('the evaluation photographs come with scikit-image: pip install "kinemo[eval]"')
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    found = [folder / name for name in PHOTOGRAPHS if (folder / name).is_file()]
    if not found:
        raise RuntimeError(f'no bundled photographs found in {folder}; reinstall: pip install "kinemo[eval]"')
    return found


def resize_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frames resized (LANCZOS) to width x height, unchanged when they already are."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.shape[1:3] == (height, width):
        return frames
    resized = [Image.fromarray(f).resize((width, height), Image.Resampling.LANCZOS) for f in frames]
    return np.stack([np.asarray(f, dtype=np.uint8) for f in resized])


def _summary(values: Sequence[float], *names: str) -> dict[str, float]:
    ops: dict[str, Callable] = {"min": np.min, "mean": np.mean, "max": np.max, "median": np.median}
    return {name: float(ops[name](values)) if len(values) else float("nan") for name in names}


def evaluate_camera(
    generate: Callable[[Path, str, int, int, int], np.ndarray],
    pictures: Iterable[str | Path],
    moves: Iterable[str],
    width: int = 512,
    height: int = 288,
    seeds: Iterable[int] = (0,),
) -> dict:
    """Generate "the camera <move>" from every picture and seed, and read each clip's move off its frames.

    generate(picture, prompt, width, height, seed) returns (f, h, w, 3) uint8 frames; frames of another size
    are resized to width x height first. Returns per-move and overall accuracy, frame 0's PSNR and sharpness
    against the fitted picture, flicker, the clip count and one record per clip."""
    moves, seeds = list(moves), list(seeds)
    clips, psnrs, ratios, flickers = [], [], [], []
    for picture in map(Path, pictures):
        fitted = fit_picture(picture, width, height)
        for move in moves:
            for seed in seeds:
                frames = resize_frames(generate(picture, f"the camera {move}", width, height, seed), width, height)
                motion = clip_motion(frames)
                predicted = move_of(motion, width)
                clips.append(
                    {"picture": picture.name, "move": move, "seed": seed, "predicted": predicted, "motion": motion}
                )
                psnrs.append(psnr(frames[0], fitted))
                ratios.append(sharpness_ratio(frames[0], fitted))
                flickers.append(flicker(frames))
    per_move = {m: float(np.mean([c["predicted"] == m for c in clips if c["move"] == m] or [0.0])) for m in moves}
    return {
        "clips": len(clips),
        "accuracy": float(np.mean([c["predicted"] == c["move"] for c in clips])) if clips else 0.0,
        "per_move": per_move,
        "psnr_frame0": _summary(psnrs, "min", "mean"),
        "sharpness_ratio": _summary(ratios, "min", "mean"),
        "flicker": _summary(flickers, "max", "median"),
        "per_clip": clips,
    }
