"""Call a diffusers pipeline directly, the way its documentation does: the reference Kinemo must match."""

from __future__ import annotations

import numpy as np

CLASSES = {
    ("animatediff", "t2v"): "AnimateDiffPipeline",
    ("svd", "i2v"): "StableVideoDiffusionPipeline",
    ("wan", "t2v"): "WanPipeline",
    ("wan", "i2v"): "WanImageToVideoPipeline",
    ("ltx", "t2v"): "LTXPipeline",
    ("ltx", "i2v"): "LTXImageToVideoPipeline",
    ("cogvideox", "t2v"): "CogVideoXPipeline",
    ("cogvideox", "i2v"): "CogVideoXImageToVideoPipeline",
    ("skyreels_v2", "t2v"): "SkyReelsV2DiffusionForcingPipeline",
    ("skyreels_v2", "i2v"): "SkyReelsV2DiffusionForcingImageToVideoPipeline",
    ("ltx2", "t2v"): "LTX2Pipeline",
    ("ltx2", "i2v"): "LTX2ImageToVideoPipeline",
    ("sana_video", "t2v"): "SanaVideoPipeline",
    ("sana_video", "i2v"): "SanaImageToVideoPipeline",
    ("hunyuan15", "t2v"): "HunyuanVideo15Pipeline",
    ("hunyuan15", "i2v"): "HunyuanVideo15ImageToVideoPipeline",
    ("kandinsky5", "t2v"): "Kandinsky5T2VPipeline",
    ("kandinsky5", "i2v"): "Kandinsky5I2VPipeline",
}


def direct_frames(case, folder, prompt: str, image_path, seed: int, steps: int) -> np.ndarray:
    """(f, h, w, 3) uint8 frames of pipeline(...) with generator=torch.Generator("cpu").manual_seed(seed)."""
    import diffusers
    import torch
    from PIL import Image

    pipe = getattr(diffusers, CLASSES[(case.family, case.task)]).from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(height=case.size, width=case.size, num_frames=case.frames, num_inference_steps=steps)
    image = Image.open(image_path).convert("RGB") if case.image_to_video else None
    if case.family == "svd":
        kwargs.update(image=image, max_guidance_scale=case.guidance, fps=case.fps)
    else:
        kwargs.update(prompt=prompt, guidance_scale=case.guidance)
        if image is not None:
            kwargs["image"] = image
        if case.family in ("ltx", "ltx2"):
            kwargs["frame_rate"] = case.fps
        if case.family == "skyreels_v2":
            kwargs["fps"] = case.fps
        if case.family == "hunyuan15":  # guidance is the guider's; the picture decides the size
            pipe.guider = pipe.guider.new(guidance_scale=kwargs.pop("guidance_scale"))
            if image is not None:
                kwargs.pop("height"), kwargs.pop("width")
        if case.family == "sana_video":
            kwargs.update(frames=kwargs.pop("num_frames"), use_resolution_binning=False)
    frames = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").frames[0]
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def gradient_image(width: int = 48, height: int = 40):
    """A small RGB PIL picture with structure in every channel."""
    from PIL import Image

    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [xs * 255 // (width - 1), ys * 255 // (height - 1), (xs + ys) * 255 // (width + height - 2)], axis=-1
    )
    return Image.fromarray(rgb.astype(np.uint8))


def gradient_picture(path, width: int = 48, height: int = 40):
    """gradient_image(width, height) saved at path; returns path."""
    gradient_image(width, height).save(path)
    return path
