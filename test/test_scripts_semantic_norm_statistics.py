"""scripts/semantic_norm_statistics.py: one checkpoint scored with running and with per-image BatchNorm statistics."""
import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_norm_statistics.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rows_for_both_statistics_differ_and_the_floor_keeps_running(tmp_path, capsys):
    from dense_descriptor_grasp.data.generate import generate_dataset
    from dense_descriptor_grasp.data.render import RenderConfig
    from dense_descriptor_grasp.training.train import main as train_main

    root = str(tmp_path / "clutter")
    generate_dataset(root, ["duck"], num_views=4, views_per_scene=2, seed=3, distractors=["eval"],
                     distractors_per_scene=(1, 1), config=RenderConfig.training(width=64, height=48), progress=False)
    assert train_main(["--dataset", root, "--out", str(tmp_path / "ckpt"), "--descriptor-dim", "8",
                       "--num-keypoints", "4", "--steps", "0", "--set", "data.val_fraction=0.0",
                       "--set", "train.tensorboard=false", "--no-progress"]) == 0
    script = runpy.run_path(str(SCRIPT))
    out = tmp_path / "out"
    assert script["main"]([root, str(out), f"m={tmp_path / 'ckpt' / 'last.pt'}"]) == 0
    report = json.loads((out / "semantic_report.json").read_text())
    assert {"m/running", "m/image", "untrained", "mask_centroid"} <= set(report["methods"])
    assert "m/image" in capsys.readouterr().out
    # the same weights, normalised differently: other predictions
    pixels = {name: [tuple(m["methods"][name]["uv"]) for m in report["matches"] if m["methods"][name]["uv"]]
              for name in ("m/running", "m/image", "untrained")}
    assert pixels["m/running"] and pixels["m/running"] != pixels["m/image"]
    assert pixels["m/running"] == pixels["untrained"]           # steps 0: the floor is the running-statistics twin
    with pytest.raises(SystemExit):
        script["main"]([root, str(out), "no_equals_sign.pt"])
