"""What `kinemo generate` adds to what the user gives before a request is made, shared by every caller that
builds requests from partial input (generate, batch): the picture's aspect, a re-rendered video's length, a fast
version's settings, and the inputs' fingerprints. Nothing here is imported at the parser's start-up cost: the heavy
modules are imported inside the functions."""

from __future__ import annotations


def fast_settings(backend, fast: bool) -> dict:
    """Steps and guidance of a model whose fast version is a distillation LoRA (the catalog's fast_lora)."""
    entry = getattr(getattr(backend, "ref", None), "entry", None)
    if not fast or entry is None or entry.fast_lora is None:
        return {}
    return entry.fast_lora.settings()


def fast_loras(backend) -> tuple:
    entry = getattr(getattr(backend, "ref", None), "entry", None)
    return (entry.fast_lora.weight(),) if entry is not None and entry.fast_lora is not None else ()


def video_defaults(path, backend, defaults: dict, sized) -> dict:
    """The video's aspect (unless the size is given) and a frame count it holds: the model's default or the
    video's length, whichever is shorter, down to the family's frame rule."""
    from engine.registry.families import FAMILIES
    from engine.util.images import size_for_picture
    from engine.util.videos import load_video

    frames, _ = load_video(path)  # an unusable video is bad input, said here before any work
    chosen: dict = {}
    if not sized:
        chosen["width"], chosen["height"] = size_for_picture(frames.shape[2], frames.shape[1])
    step = FAMILIES[backend.family].frame_step if getattr(backend, "family", None) in FAMILIES else 1
    count = min(defaults.get("frames", len(frames)), len(frames))
    chosen["frames"] = max((count - 1) // step * step + 1, 1)
    return chosen


def picture_size(path) -> dict:
    """{"width", "height"} with the picture's aspect (engine.util.images.size_for_picture)."""
    from engine.util.images import load_image, size_for_picture

    rgb = load_image(path)  # an unusable picture is bad input, said here before any work
    width, height = size_for_picture(rgb.shape[1], rgb.shape[0])
    return {"width": width, "height": height}


def check_inputs(backend, request):
    """The request with the fingerprints of its pictures, videos and LoRAs (engine.backends.inputs); an unusable
    input is bad input, said before any work."""
    from engine.backends.inputs import fingerprinted

    backend.check(request)  # the model's rules first: they say what it cannot do before any file is read
    request = fingerprinted(request, getattr(backend.options, "token", None))
    backend.check(request)
    return request
