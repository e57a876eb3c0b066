"""scripts/semantic_oracle_gating.py: the ground-truth-mask gate keeps every prediction on the (dilated) target."""
import json
import runpy
from pathlib import Path

import cv2
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_oracle_gating.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_gated_predictions_lie_on_the_dilated_target_mask(tmp_path, capsys):
    from dense_descriptor_grasp.data.generate import generate_dataset
    from dense_descriptor_grasp.data.render import RenderConfig
    from dense_descriptor_grasp.training.train import main as train_main

    root = str(tmp_path / "clutter")
    generate_dataset(root, ["duck"], num_views=4, views_per_scene=2, seed=3, distractors=["eval"],
                     distractors_per_scene=(2, 2), config=RenderConfig.training(width=64, height=48), progress=False)
    assert train_main(["--dataset", root, "--out", str(tmp_path / "ckpt"), "--descriptor-dim", "8",
                       "--num-keypoints", "4", "--steps", "0", "--set", "data.val_fraction=0.0",
                       "--set", "train.tensorboard=false", "--no-progress"]) == 0
    script = runpy.run_path(str(SCRIPT))
    out = tmp_path / "out"
    assert script["main"]([str(tmp_path / "ckpt" / "last.pt"), root, str(out), "--dilate", "0", "3"]) == 0
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
