"""scripts/semantic_error_analysis.py: where matches land, by target size, and the grasp node's max_ratio trade."""
import json
import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_error_analysis.py"


def _run(argv, capsys):
    old = sys.argv
    sys.argv = [str(SCRIPT)] + argv
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = old
    return exit_info.value.code, capsys.readouterr().out


def _report(tmp_path, with_ratio=True):
    root = tmp_path / "data"
    (root / "camera").mkdir(parents=True)
    (root / "mask").mkdir()
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 5:15] = 2                      # the target
    mask[5:15, 20:25] = 1                     # a distractor
    cv2.imwrite(str(root / "mask" / "000000.png"), mask)
    (root / "camera" / "000000.json").write_text(json.dumps({"objects": [
        {"name": "duck", "mask_value": 2, "role": "target"}, {"name": "lego", "mask_value": 1, "role": "distractor"}]}))
    rows = [((10, 10), 1.0, 3.0, 0.5), ((22, 10), 12.0, 40.0, 0.9), ((27, 2), 20.0, 60.0, 0.97)]
    matches = [{"view_id": "000000", "part": "head_top",
                "methods": {"m": {"uv": list(uv), "px_error": px, "mm_error": mm,
                                  **({"ratio": r} if with_ratio else {})}}} for uv, px, mm, r in rows]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"settings": {"dataset": "elsewhere"}, "methods": {"m": {}}, "matches": matches}))
    return path, root


def test_where_matches_land_and_the_ratio_trade(tmp_path, capsys):
    path, root = _report(tmp_path)
    code, out = _run([str(path), "--dataset", str(root)], capsys)
    assert code == 0
    assert "'target': 1, 'distractor': 1, 'background': 1" in out
    assert "R = 0.95: 2 of 3 accepted (0.67), median 6.5 px" in out      # the 0.97 match is refused
    assert "R = 0.50: 1 of 3 accepted (0.33), median 1.0 px, 3.0 mm, within 10 mm 1.00" in out


def test_a_report_without_ratios_skips_that_part_and_a_missing_dataset_is_named(tmp_path, capsys):
    path, root = _report(tmp_path, with_ratio=False)
    code, out = _run([str(path), "--dataset", str(root)], capsys)
    assert code == 0 and "max_ratio" not in out
    with pytest.raises(SystemExit, match="elsewhere.*--dataset"):
        runpy.run_path(str(SCRIPT), run_name="__not_main__")["main"]([str(path)])


def test_wrong_matches_are_named_by_the_nearest_projected_part(tmp_path, capsys):
    """A match > 10 px off is attributed to the part whose projection is nearest to it (parts from the report's
    settings, projected with the view's K, camera and target pose); right matches are not counted."""
    root = tmp_path / "data"
    (root / "camera").mkdir(parents=True)
    (root / "mask").mkdir()
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 10:50] = 2
    cv2.imwrite(str(root / "mask" / "000000.png"), mask)
    T_wo = np.eye(4)
    T_wo[2, 3] = 1.0                                       # the object 1 m in front of the camera
    (root / "camera" / "000000.json").write_text(json.dumps({
        "K": [[100.0, 0, 30.0], [0, 100.0, 20.0], [0, 0, 1]], "T_world_camera": np.eye(4).tolist(),
        "objects": [{"name": "duck", "mask_value": 2, "role": "target", "T_world_object": T_wo.tolist()}]}))
    parts = {"front": [-0.15, 0.0, 0.0], "back": [0.15, 0.0, 0.0]}   # pixels (15, 20) and (45, 20)
    rows = [("front", (44, 21), 29.0), ("front", (16, 20), 1.0), ("back", (14, 19), 31.0)]
    matches = [{"view_id": "000000", "part": p, "methods": {"m": {"uv": list(uv), "px_error": px, "mm_error": px}}}
               for p, uv, px in rows]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"settings": {"dataset": str(root), "parts": parts}, "methods": {"m": {}},
                                "matches": matches}))
    code, out = _run([str(path)], capsys)
    assert code == 0
    assert "front: {'back': 1}" in out and "back: {'front': 1}" in out


def test_error_by_how_much_of_the_part_both_views_see(tmp_path, capsys):
    """Per part, the median over the matches whose support is >= k in the query and in the reference view."""
    path, root = _report(tmp_path)
    report = json.loads(path.read_text())
    for m, (q, r) in zip(report["matches"], [(50, 45), (50, 5), (12, 30)]):   # errors 1, 12, 20 px
        m.update(query_support=q, reference_support=r)
    path.write_text(json.dumps(report))
    code, out = _run([str(path), "--dataset", str(root)], capsys)
    assert code == 0
    assert "head_top: >= 0: 12.0 px (3), >= 10: 10.5 px (2), >= 20: 1.0 px (1), >= 40: 1.0 px (1)" in out
    path_plain, _ = _report(tmp_path / "plain")
    code, out = _run([str(path_plain), "--dataset", str(root)], capsys)
    assert code == 0 and "support" not in out
