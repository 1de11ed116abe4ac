import pytest

from engine.api.errors import InvalidRequest
from engine.api.request import GenerationRequest


def test_round_trip_through_json():
    request = GenerationRequest("a red circle grows on a black background", seed=7, guidance=3.5, image="x.png")
    assert GenerationRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   \n"}, "prompt is empty"),
        ({"frames": 0}, "frames"),
        ({"frames": 1025}, "frames"),
        ({"fps": 0}, "fps"),
        ({"steps": 0}, "steps"),
        ({"steps": 5000}, "steps"),
        ({"width": 16}, "width"),
        ({"height": 99999}, "height"),
        ({"width": 101}, "even"),
        ({"guidance": float("nan")}, "guidance"),
        ({"seed": -1}, "seed"),
        ({"frames": 2.5}, "whole number"),
        ({"frames": True}, "whole number"),
        ({"prompt": "x" * 3000}, "limit"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(changes, message):
    with pytest.raises(InvalidRequest, match=message):
        GenerationRequest("a red circle", **{k: v for k, v in changes.items() if k != "prompt"}).with_changes(
            **changes
        ).validate()


def test_from_json_refuses_unknown_fields_and_bad_json():
    with pytest.raises(InvalidRequest, match="unknown request fields: colour"):
        GenerationRequest.from_dict({"prompt": "x", "colour": "red"})
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        GenerationRequest.from_json("{")
    with pytest.raises(InvalidRequest, match="schema"):
        GenerationRequest.from_dict({"prompt": "x", "schema": "other/9"})


@pytest.mark.parametrize("image", [123, {}, [], "", "   "])
def test_an_image_that_is_not_a_path_is_bad_input(image):
    with pytest.raises(InvalidRequest, match="image must be the path"):
        GenerationRequest.from_dict({"prompt": "a red circle", "image": image})


@pytest.mark.parametrize("digest", [5, "abc", "G" * 64, "a" * 63])
def test_a_picture_fingerprint_must_be_a_sha256(digest):
    with pytest.raises(InvalidRequest, match="image_sha256"):
        GenerationRequest.from_dict({"prompt": "a red circle", "image": "p.png", "image_sha256": digest})


def test_a_continuation_starts_from_the_clip_alone_with_the_prompt_at_its_end():
    from engine.api.controls import LoraWeight, PromptChange

    made = GenerationRequest(
        "a red circle",
        image="first.png",
        image_sha256="a" * 64,
        last_image="last.png",
        frames=32,
        seed=7,
        loras=(LoraWeight("style.safetensors", 0.5),),
        prompt_changes=(PromptChange(8, "a blue square"), PromptChange(20, "a green triangle")),
    ).validate()
    more = made.continuation("clip.mp4", 12).validate()
    assert (more.prompt, more.prompt_changes, more.frames, more.seed) == ("a green triangle", (), 12, 7)
    assert (more.image, more.image_sha256, more.last_image, more.video) == (None, None, None, None)
    assert (more.extends, more.extends_sha256, more.loras) == ("clip.mp4", None, made.loras)
