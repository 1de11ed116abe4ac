"""One case per family and task: how to build its tiny pipeline and what a small run asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    task: str  # "t2v" or "i2v"
    build: Callable  # folder -> folder
    frames: int
    size: int = 32
    guidance: float = 2.0
    fps: int = 8
    direct: dict = field(default_factory=dict)  # what the direct diffusers call adds for the same request

    @property
    def image_to_video(self) -> bool:
        return self.task == "i2v"


def _animatediff(folder):
    from tiny_diffusers.animatediff import save_tiny_animatediff

    return save_tiny_animatediff(folder)


def _svd(folder):
    from tiny_diffusers.svd import save_tiny_svd

    return save_tiny_svd(folder)


def _wan_t2v(folder):
    from tiny_diffusers.wan import save_tiny_wan_t2v

    return save_tiny_wan_t2v(folder)


def _wan_i2v(folder):
    from tiny_diffusers.wan import save_tiny_wan_i2v

    return save_tiny_wan_i2v(folder)


def _ltx(folder):
    from tiny_diffusers.ltx import save_tiny_ltx

    return save_tiny_ltx(folder)


def _cogvideox_t2v(folder):
    from tiny_diffusers.cogvideox import save_tiny_cogvideox_t2v

    return save_tiny_cogvideox_t2v(folder)


def _cogvideox_i2v(folder):
    from tiny_diffusers.cogvideox import save_tiny_cogvideox_i2v

    return save_tiny_cogvideox_i2v(folder)


def _wan22_ti2v(folder):
    from tiny_diffusers.wan22 import save_tiny_wan22_ti2v

    return save_tiny_wan22_ti2v(folder)


def _wan22_a14b_t2v(folder):
    from tiny_diffusers.wan22 import save_tiny_wan22_a14b_t2v

    return save_tiny_wan22_a14b_t2v(folder)


def _wan22_a14b_i2v(folder):
    from tiny_diffusers.wan22 import save_tiny_wan22_a14b_i2v

    return save_tiny_wan22_a14b_i2v(folder)


def _skyreels_v2(folder):
    from tiny_diffusers.skyreels_v2 import save_tiny_skyreels_v2_df_t2v

    return save_tiny_skyreels_v2_df_t2v(folder)


def _ltx2(folder):
    from tiny_diffusers.ltx2 import save_tiny_ltx2

    return save_tiny_ltx2(folder)


def _sana_video_t2v(folder):
    from tiny_diffusers.sana_video import save_tiny_sana_video_t2v

    return save_tiny_sana_video_t2v(folder)


def _sana_video_i2v(folder):
    from tiny_diffusers.sana_video import save_tiny_sana_video_i2v

    return save_tiny_sana_video_i2v(folder)


def _hunyuan15_t2v(folder):
    from tiny_diffusers.hunyuan15 import save_tiny_hunyuan15_t2v

    return save_tiny_hunyuan15_t2v(folder)


def _hunyuan15_i2v(folder):
    from tiny_diffusers.hunyuan15 import save_tiny_hunyuan15_i2v

    return save_tiny_hunyuan15_i2v(folder)


def _kandinsky5_t2v(folder):
    from tiny_diffusers.kandinsky5 import save_tiny_kandinsky5_t2v

    return save_tiny_kandinsky5_t2v(folder)


def _kandinsky5_i2v(folder):
    from tiny_diffusers.kandinsky5 import save_tiny_kandinsky5_i2v

    return save_tiny_kandinsky5_i2v(folder)


CASES = [
    Case("animatediff", "animatediff", "t2v", _animatediff, frames=8),
    Case("svd", "svd", "i2v", _svd, frames=4),
    Case("wan-t2v", "wan", "t2v", _wan_t2v, frames=9),
    Case("wan-i2v", "wan", "i2v", _wan_i2v, frames=9),
    Case("ltx-t2v", "ltx", "t2v", _ltx, frames=9),
    Case("ltx-i2v", "ltx", "i2v", _ltx, frames=9),
    Case("cogvideox-t2v", "cogvideox", "t2v", _cogvideox_t2v, frames=9),
    Case("cogvideox-i2v", "cogvideox", "i2v", _cogvideox_i2v, frames=9),
    Case("wan22-ti2v-t2v", "wan", "t2v", _wan22_ti2v, frames=9),
    Case("wan22-ti2v-i2v", "wan", "i2v", _wan22_ti2v, frames=9),
    Case("wan22-a14b-t2v", "wan", "t2v", _wan22_a14b_t2v, frames=9),
    Case("wan22-a14b-i2v", "wan", "i2v", _wan22_a14b_i2v, frames=9),
    Case("skyreels-v2-t2v", "skyreels_v2", "t2v", _skyreels_v2, frames=9),
    Case("skyreels-v2-i2v", "skyreels_v2", "i2v", _skyreels_v2, frames=9),
    Case("ltx2-t2v", "ltx2", "t2v", _ltx2, frames=9, size=64, fps=24),
    Case("ltx2-i2v", "ltx2", "i2v", _ltx2, frames=9, size=64, fps=24),
    Case("sana-video-t2v", "sana_video", "t2v", _sana_video_t2v, frames=9),
    Case("sana-video-i2v", "sana_video", "i2v", _sana_video_i2v, frames=9),
    Case("hunyuan15-t2v", "hunyuan15", "t2v", _hunyuan15_t2v, frames=9),
    Case("hunyuan15-i2v", "hunyuan15", "i2v", _hunyuan15_i2v, frames=9, size=48),
    Case("kandinsky5-t2v", "kandinsky5", "t2v", _kandinsky5_t2v, frames=9),
    Case("kandinsky5-i2v", "kandinsky5", "i2v", _kandinsky5_i2v, frames=17),
]
