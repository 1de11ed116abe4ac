"""Reading and preparing first-frame pictures for image-to-video. PIL and numpy only."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.api.errors import ImageError

MAX_PIXELS = 64_000_000


def _to_rgb8(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> (h, w, 3) uint8; transparency is composited over black, 16-bit is scaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_image(path: str | Path) -> np.ndarray:
    """Read a picture as (h, w, 3) uint8 (read-only) or raise ImageError with a one-line reason.

    The caller that checks a picture at the boundary and the backend that uses it get the same array: the
    last picture read is kept, keyed by its path, size and modification time, so it is decoded once."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    global _last_read
    last = _last_read  # one read of one tuple: safe while another thread replaces it
    if key is not None and last[0] == key:
        return last[1]
    pixels = _read_image(path)
    pixels.setflags(write=False)
    if key is not None:
        _last_read = (key, pixels)
    return pixels


_last_read: tuple = (None, None)  # ((path, size, mtime), pixels) of the last picture read


def _read_image(path: Path) -> np.ndarray:
    if not path.exists():
        raise ImageError(f"image not found: {path}")
    if path.is_dir():
        raise ImageError(f"image path is a folder, not a picture: {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"image is empty (0 bytes): {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a refusal, not a warning on stderr
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ImageError(f"image is too large ({image.width}x{image.height} pixels): {path}")
                image.load()
                return _to_rgb8(upright(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"image is too large (it declares more than {MAX_PIXELS // 10**6} million pixels): {path}"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"not a picture Kinemo can read: {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"image is damaged or truncated ({reason}): {path}") from None


PICTURE_LONG_SIDE = 512  # an animated picture's default output: its own aspect, this long on its longer side


def size_for_picture(width: int, height: int, long_side: int = PICTURE_LONG_SIDE) -> tuple[int, int]:
    """An output size (even numbers, at least 32) with the picture's aspect and long_side on its longer side
    (the picture's own size when it is smaller)."""
    scale = min(1.0, long_side / max(width, height))

    def even(n: float) -> int:
        return max(32, int(round(n * scale / 2)) * 2)

    return even(width), even(height)


def upright(image: Image.Image) -> Image.Image:
    """The picture as it is meant to be seen: phones store portraits sideways with an EXIF orientation tag."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, TypeError, KeyError, SyntaxError):
        return image  # an unreadable orientation tag: the pixels as stored


def crop_to_aspect(rgb: np.ndarray, aspect: float) -> np.ndarray:
    """The centre of a picture (h, w, 3) cropped to aspect (width / height): as much of it as that aspect holds."""
    h, w = rgb.shape[:2]
    if w / h > aspect:
        crop_w, crop_h = max(1, round(h * aspect)), h
    else:
        crop_w, crop_h = w, max(1, round(w / aspect))
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    return rgb[top : top + crop_h, left : left + crop_w]


def fit_to_size(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The picture centre-cropped to width:height, then resized (LANCZOS) to exactly that: (height, width, 3)."""
    cropped = Image.fromarray(np.ascontiguousarray(crop_to_aspect(rgb, width / height)))
    if cropped.size != (width, height):
        cropped = cropped.resize((width, height), Image.Resampling.LANCZOS)
    return np.array(cropped, dtype=np.uint8)


def fit_to_frame(rgb: np.ndarray, aspect: float, size: int) -> np.ndarray:
    """Centre-crop to the output aspect (width / height), then resize to the pixel model's square frame.

    The export later stretches the square frames back to the output size, so the picture keeps
    its proportions in the clip.
    """
    cropped = Image.fromarray(np.ascontiguousarray(crop_to_aspect(rgb, aspect)))
    return np.array(cropped.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
