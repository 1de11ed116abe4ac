"""The bundled model's conditioning for a request, encoded once per run."""

from __future__ import annotations

from engine.api.request import GenerationRequest
from engine.kinemo.vocabulary import tokenize
from engine.util.images import fit_to_frame


def encode_request(model, device: str, request: GenerationRequest, image):
    """The conditioning (engine.kinemo.model.Conditioning): the prompt alone when guidance is 1, else the
    prompt and the negative prompt batched; the first frame, fit to the output's aspect, when given."""
    import torch

    from engine.kinemo.text_encoder import token_batch

    guided = request.guidance != 1.0
    prompts = [request.prompt, request.negative_prompt] if guided else [request.prompt]
    with torch.inference_mode():  # never around a yield: the caller's thread would stay in it
        ids = token_batch([tokenize(p).ids for p in prompts]).to(device)
        first = None
        if image is not None:
            fitted = fit_to_frame(image, request.width / request.height, model.config.size)  # (h, w, 3) uint8
            first = torch.from_numpy(fitted).permute(2, 0, 1).float().div(127.5).sub(1)[None].to(device)
            first = first.expand(len(prompts), -1, -1, -1)
        return model.encode(ids, first)
