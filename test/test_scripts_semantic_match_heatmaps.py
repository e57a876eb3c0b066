"""scripts/semantic_match_heatmaps.py: one row of three panels per chosen match; bad choices are named."""
import json
import runpy
from pathlib import Path

import cv2
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_match_heatmaps.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_one_row_per_match_and_clear_refusals(tmp_path, tiny_clutter_and_checkpoint):
    from dense_descriptor_grasp.evaluation.semantic import semantic_point_evaluation

    root, ckpt_file = tiny_clutter_and_checkpoint
    semantic_point_evaluation({"m": str(ckpt_file)}, root, include_floors=False, out_dir=tmp_path / "eval")
    report = tmp_path / "eval" / "semantic_report.json"
    matches = json.loads(report.read_text())["matches"]
    part = matches[0]["part"]
    expected = min(2, sum(m["part"] == part for m in matches))
    main = runpy.run_path(str(SCRIPT))["main"]
    out = tmp_path / "heat.png"
    assert main([str(report), str(ckpt_file), str(out), "--part", part, "--count", "2"]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (48 * 2 * expected, 64 * 2 * 3, 3)
    with pytest.raises(SystemExit, match="no matches of part 'nose'.*its parts"):
        main([str(report), str(ckpt_file), str(out), "--part", "nose"])
    with pytest.raises(SystemExit, match="lower --min-support"):
        main([str(report), str(ckpt_file), str(out), "--part", part, "--min-support", "100000"])
