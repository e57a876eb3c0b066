"""scripts/semantic_oracle_gating.py: the ground-truth-mask gate keeps every prediction on the (dilated) target."""
import json
import runpy
from pathlib import Path

import cv2
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_oracle_gating.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_gated_predictions_lie_on_the_dilated_target_mask(tmp_path, capsys, tiny_clutter_and_checkpoint):
    root, ckpt = tiny_clutter_and_checkpoint
    script = runpy.run_path(str(SCRIPT))
    out = tmp_path / "out"
    assert script["main"]([str(ckpt), root, str(out), "--dilate", "0", "3"]) == 0
    report = json.loads((out / "semantic_report.json").read_text())
    assert {"checkpoint", "gt_mask_dilate0", "gt_mask_dilate3"} <= set(report["methods"])
    assert "gt_mask_dilate0" in capsys.readouterr().out
    checked = 0
    for match in report["matches"]:
        camera = json.loads((Path(root) / "camera" / f"{match['view_id']}.json").read_text())
        value = next(o["mask_value"] for o in camera["objects"] if o["role"] == "target")
        target = (cv2.imread(str(Path(root) / "mask" / f"{match['view_id']}.png"), cv2.IMREAD_UNCHANGED)
                  == value).astype(np.uint8)
        for name, k in (("gt_mask_dilate0", 0), ("gt_mask_dilate3", 3)):
            allowed = cv2.dilate(target, np.ones((2 * k + 1, 2 * k + 1), np.uint8)) if k else target
            uv = match["methods"][name]["uv"]
            if uv is None:                     # no prediction (e.g. the part is hidden in the reference)
                continue
            u, v = np.round(uv).astype(int)
            assert allowed[v, u], (name, match["view_id"], match["part"], (u, v))
            checked += 1
    assert checked > 0
