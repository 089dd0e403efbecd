"""The benchmark runs end to end and reports what issue-level targets are checked against."""

from __future__ import annotations

import json

from u2fusion_tf import bench


def test_a_small_benchmark_reports_every_figure(shared_data):
    """One repeat at small sides, no 24-megapixel run, the first pair of each u2fusion_test set
    for accuracy."""
    sides = (96, 192)
    report = bench.run(
        repeats=1,
        large_side=0,
        train_steps=1,
        data_root=shared_data,
        accuracy_pairs_per_set=1,
        folder_pairs=2,
        sides=sides,
    )
    json.dumps(report)  # what --json writes
    for precision in bench.PRECISIONS:
        assert [row["size"] for row in report[precision]["fusion"]] == ["96x96", "192x192"]
        assert all(row["gflops"] > 0 for row in report[precision]["fusion"])
        # the convolutions are most of fusion's time (scaled to the same number of pixels)
        alone, whole = report[precision]["convolutions_alone"], report[precision]["fusion"][1]
        assert alone["size"] == "96x96"  # half the largest side
        pixels = (96 / 192) ** 2
        assert 0.3 < alone["seconds"] / (whole["seconds"] * pixels) < 1.5
        assert set(report[precision]["training"]) == {"precomputed", "vgg_in_step", "speedup"}
    assert set(report["determinism"]["seconds_per_step"]) == {"deterministic", "nondeterministic"}
    feed = report["input_pipeline"]
    assert feed["seconds_per_step_in_memory"] > 0 and feed["seconds_per_step_pipeline"] > 0
    accuracy = report["bf16"]["accuracy"]
    assert accuracy["weights"] == "u2fusion.weights.h5"  # the shipped default
    assert accuracy["pairs"] == 6
    assert 0 < accuracy["mean_abs_diff"] < 1 / 255  # bf16 really computed in bf16
    for weights, tolerance in (("float32", 1e-5), ("float16", 2e-3)):
        rows = report["tflite"][weights]
        assert [row["size"] for row in rows] == ["96x96", "192x192"]
        assert all(row["speed_vs_tensorflow"] > 0 for row in rows)
        assert all(row["max_abs_diff"] < tolerance for row in rows)
    folder = report["folder"]
    assert folder["pairs"] == 2
    assert folder["read_ahead_pairs_per_s"] > 0 and folder["sequential_pairs_per_s"] > 0
    text = bench.format_report(report)
    assert text.count("| TFLite, float32 weights |") == 2
    assert "folder fusion (2 pairs of u2fusion_test/vis-ir/RoadScene, float32)" in text
    assert "bf16 vs float32 fused Y (u2fusion.weights.h5 weights) on 6 test pairs" in text
    assert text.count("| float32 |") == 4 and text.count("| bf16 |") == 4
    assert text.count("the ten convolutions alone, 96x96") == 2
    assert "bf16 fusion speed-up at 192x192: " in text
    assert "fed by tf.data from HDF5" in text
    assert "with op determinism (the default)" in text
    verdicts = [goal.verdict(report)[1] for goal in bench.GOALS]
    assert verdicts[-2:] == ["not measured"] * 2  # no 24-megapixel run
    assert set(verdicts[:-2]) <= {"reached", "not reached"}
    for goal in bench.GOALS:
        assert f"| {goal.text} | " in text


def test_a_goal_is_judged_on_its_figure_by_its_target():
    at_least = bench.Goal("steps", lambda report: report["v"], 4.0, True, "{:.1f}x")
    assert at_least.verdict({"v": 4.0}) == ("4.0x", "reached")
    assert at_least.verdict({"v": 3.99}) == ("4.0x", "not reached")  # judged before rounding
    below = bench.Goal("memory", lambda report: report["v"], 4.0, False, "{:.2f} GB")
    assert below.verdict({"v": 3.7}) == ("3.70 GB", "reached")
    assert below.verdict({"v": 4.0}) == ("4.00 GB", "not reached")
    assert below.verdict({"v": None}) == ("", "not measured")
