"""Which pipeline class each family loads for each creative control, and the task a request asks for."""

import pytest

from engine.api.errors import InvalidRequest
from engine.api.request import GenerationRequest
from engine.planning.estimate import Shape
from engine.registry.families import EXTEND_CONTEXT_FRAMES, FAMILIES, TASKS, request_task


def test_the_task_a_request_asks_for():
    base = GenerationRequest("a fox")
    assert request_task(base) == "t2v"
    assert request_task(base.with_changes(image="a.png")) == "i2v"
    assert request_task(base.with_changes(image="a.png", last_image="b.png")) == "first_last"
    assert request_task(base.with_changes(video="v.mp4")) == "v2v"
    assert request_task(base.with_changes(extends="c.mp4")) == "extend"


def test_each_family_names_a_class_for_what_it_can_do_and_refuses_the_rest_in_one_line():
    assert FAMILIES["ltx"].pipeline_class("first_last") == "LTXConditionPipeline"
    assert FAMILIES["wan"].pipeline_class("v2v") == "WanVideoToVideoPipeline"
    assert FAMILIES["cogvideox"].pipeline_class("extend") == "CogVideoXImageToVideoPipeline"  # from the last frame
    assert FAMILIES["skyreels_v2"].pipeline_class("extend") == "SkyReelsV2DiffusionForcingVideoToVideoPipeline"
    for family in FAMILIES.values():
        for task in TASKS:
            try:
                assert family.pipeline_class(task)
            except InvalidRequest as exc:
                assert "\n" not in str(exc) and TASKS[task] in str(exc)
    with pytest.raises(InvalidRequest, match="no video-to-video pipeline"):
        FAMILIES["svd"].pipeline_class("v2v")


def test_the_memory_shape_counts_the_video_read_and_the_frames_an_extension_remakes():
    base = GenerationRequest("a fox", frames=9)
    assert Shape.of("wan", base.with_changes(video="v.mp4")).input_frames == 9
    extension = Shape.of("ltx", base.with_changes(extends="c.mp4"))
    assert extension.task == "extend" and extension.frames == 9 + EXTEND_CONTEXT_FRAMES
