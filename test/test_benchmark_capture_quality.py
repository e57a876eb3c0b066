"""benchmarks/capture_quality.py part A on a small simulated capture: the pipeline meets issue 14's targets
against the simulator's truth, and the report, table and picture are written."""
import json

import pytest

from benchmarks import capture_quality


def test_capture_quality_part_a_on_a_small_capture(tmp_path):
    out = tmp_path / "results"
    rc = capture_quality.main(["--captures", "duck:0", "--views", "36", "--width", "160", "--height", "120",
                               "--train-minutes", "0", "--work", str(tmp_path / "work"), "--out", str(out),
                               "--name", "cq", "--no-progress"])
    assert rc == 0
    report = json.loads((out / "cq.json").read_text())
    (c,) = report["captures"]
    assert c["object"] == "duck" and c["views"] == 36
    assert c["pose_translation_mm"]["median"] <= 5.0 and c["pose_rotation_deg"]["median"] <= 1.0
    assert c["segmentation_iou"]["median"] >= 0.9 and c["dataset_mask_iou"]["median"] >= 0.9
    assert c["correspondences"]["median_px"] <= 2.0
    assert "training" not in report
    assert (out / "cq.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| duck:0 | 36 |" in (out / "cq.md").read_text()


def test_capture_argument_names_the_format():
    with pytest.raises(Exception, match="OBJECT:SEED"):
        capture_quality.parse_capture("duck")
