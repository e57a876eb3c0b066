"""scripts/semantic_coordinate_map.py: decode target pixels to object points and draw true against decoded."""
import runpy
from pathlib import Path

import cv2
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "semantic_coordinate_map.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_draws_rows_and_scores_parts_and_refuses_a_network_without_the_geometry_term(
        tmp_path, capsys, tiny_clutter_and_checkpoint):
    root, ckpt = tiny_clutter_and_checkpoint
    script = runpy.run_path(str(SCRIPT))
    # the fixture's checkpoint was trained without losses.coords: refused unless --sigma says how to decode
    with pytest.raises(SystemExit, match="losses.coords"):
        script["main"]([str(ckpt), root, str(tmp_path / "refused.png")])
    assert not (tmp_path / "refused.png").exists()
    out = tmp_path / "map.png"
    assert script["main"]([str(ckpt), root, str(out), "--views", "2", "--sigma", "0.02"]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 2 * 3 * 64 and img.shape[0] == 2 * 2 * 48   # 2 rows of 3 panels, x2
    text = capsys.readouterr().out
    assert "| head_top |" in text and "| beak_tip |" in text
    with pytest.raises(SystemExit, match="views"):
        script["main"]([str(ckpt), root, str(out), "--views", "0", "--sigma", "0.02"])
