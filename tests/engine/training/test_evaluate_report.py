"""The evaluation reports shape recall per class and its mean, so a set with many circles cannot flatter it."""

from engine.training.evaluate import format_report, shape_recall


def test_recall_per_class_and_its_mean():
    recall = shape_recall({"circle": [20, 20], "square": [3, 20], "triangle": [11, 20]})
    assert recall["per_class"] == {"circle": 100.0, "square": 15.0, "triangle": 55.0}
    assert recall["mean"] == 170.0 / 3  # not the pooled 34/60 a circle-heavy set would weigh otherwise
    assert shape_recall({}) == {"per_class": {}, "mean": None}


def test_the_report_prints_the_recall_line():
    t2v = {
        "clips": 60, "colour_accuracy": 100.0, "shape_accuracy": 56.7, "motion_accuracy": 98.0,
        "background_accuracy": 100.0, "all_accuracy": 55.0, "temporal_consistency": 90.0, "seconds_per_clip": 2.0,
        "shape_recall": shape_recall({"circle": [20, 20], "square": [3, 20]}),
    }  # fmt: skip
    empty = {"clips": 0}
    report = format_report(
        {"steps": 25, "guidance": 1.0, "text_to_video": t2v, "image_to_video": empty, "camera": empty}
    )
    assert "shape recall per class: circle 100.0 %  square 15.0 %  (mean over the classes 57.5 %)" in report
    exported = {
        "size": 512, "clips": 40, "shape_recall": shape_recall({"circle": [20, 20], "square": [15, 20]}),
        "outline_band_px": {"median": 1.24, "p90": 2.0}, "seconds_per_clip": 2.5,
    }  # fmt: skip
    with_export = format_report(
        {
            "steps": 25,
            "guidance": 1.0,
            "text_to_video": t2v,
            "image_to_video": empty,
            "camera": empty,
            "exported": exported,
        }
    )
    assert with_export.endswith(
        "exported at 512x512 (40 clips, MP4 read back): shape recall circle 100.0 %  square 75.0 %  (mean 87.5 %); "
        "outline band median 1.2 px, 90th percentile 2.0 px  (2.50 s per clip)"
    )


def test_the_photograph_line():
    from engine.training.evaluate import photograph_line

    scores = {
        "clips": 35, "accuracy": 1.0, "psnr_frame0": {"min": float("inf")}, "sharpness_ratio": {"min": 1.0},
        "flicker": {"max": 1.76},
    }  # fmt: skip
    assert photograph_line(scores) == (
        "photographs (35 clips, camera model): move 100.0 %  frame-0 PSNR min inf dB  sharpness min 1.00  "
        "flicker max 1.76"
    )
