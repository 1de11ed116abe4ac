import numpy as np

from engine.backends.bundled import BundledBackend
from engine.training.exported_eval import exported, exported_line, exported_text_to_video
from engine.training.outline import outline_band
from engine.training.synthetic import ObjectClip, render


def test_an_exported_clip_reads_back_at_its_size_with_its_outline_kept(tmp_path):
    clip = ObjectClip("red", "square", "moves right", "white", 20.0, 30.0, 10.0, 20.0)
    frames = (render(clip, 4, 256).permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
    back = exported(frames, tmp_path / "clip.mp4", 256, 256)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 3  # H.264 at the default quality
    assert outline_band(back[0]) < 3.0
    small = (render(clip, 4, 64).permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
    scaled = exported(small, tmp_path / "small.mp4", 256, 256)  # the exporter scales, as for kinemo generate
    assert scaled.shape == (4, 256, 256, 3) and outline_band(scaled[0]) > 3.0


def test_exported_scores_cover_every_prompt_and_class(tiny_model_dir):
    combos = [("red", "circle", "stays still", "black"), ("blue", "square", "moves up", "white")]
    backend = BundledBackend(tiny_model_dir, upscaler_folder=None)
    scores = exported_text_to_video(backend, combos, 128, steps=1, guidance=1.0)
    assert scores["clips"] == 2 and set(scores["shape_recall"]["per_class"]) == {"circle", "square"}
    assert all(0 <= v <= 100 for v in scores["shape_recall"]["per_class"].values())
    line = exported_line(scores)
    assert line.startswith("exported at 128x128 (2 clips") and ("outline band median" in line or "no outline" in line)
    assert "outline band median 2.5 px" in exported_line({**scores, "outline_band_px": {"median": 2.46, "p90": 3.0}})
