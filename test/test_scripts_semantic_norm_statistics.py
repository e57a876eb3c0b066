"""scripts/semantic_norm_statistics.py: one checkpoint scored with running and with per-image BatchNorm statistics."""
import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_norm_statistics.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rows_for_both_statistics_differ_and_the_floor_keeps_running(tmp_path, capsys, tiny_clutter_and_checkpoint):
    root, ckpt = tiny_clutter_and_checkpoint
    script = runpy.run_path(str(SCRIPT))
    out = tmp_path / "out"
    assert script["main"]([root, str(out), f"m={ckpt}"]) == 0
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
