"""preview_pairs: side-by-side PNGs with correspondence lines and mask outlines."""
import os

import cv2
import numpy as np

from dense_descriptor_grasp.data.generate import generate_dataset
from dense_descriptor_grasp.data.preview import draw_pair, main
from dense_descriptor_grasp.data.render import RenderConfig


def _pair(h=20, w=30):
    mask = np.zeros((h, w), bool)
    mask[5:15, 8:20] = True
    return {"rgb_a": np.zeros((3, h, w), np.float32), "rgb_b": np.zeros((3, h, w), np.float32),
            "mask_a": mask, "mask_b": mask, "uv_a": np.array([[10.0, 10.0], [0, 0]], np.float32),
            "uv_b": np.array([[12.0, 8.0], [0, 0]], np.float32), "valid": np.array([True, False])}


def test_draw_pair_draws_outlines_and_lines():
    img = draw_pair(_pair(), scale=1)
    assert img.shape == (20, 60, 3) and img.dtype == np.uint8
    assert (img[5, 8:20] == 255).all()                    # mask outline of A (white) on its top edge
    assert (img[5, 38:50] == 255).all()                   # and of B, shifted by W
    assert img[10, 10].any() and img[8, 42].any()         # line end points at uv_a and uv_b + (W, 0)
    assert not img[1, 1].any()                            # invalid correspondence (0, 0) is not drawn


def test_cli_writes_pngs(tmp_path, capsys):
    root = str(tmp_path / "d")
    generate_dataset(root, num_views=2, views_per_scene=2, seed=0, config=RenderConfig(width=80, height=64),
                     progress=False)
    assert main(["--dataset", root, "--out", str(tmp_path / "p"), "--num", "2"]) == 0
    assert main(["--dataset", root, "--out", str(tmp_path / "p"), "--num", "1", "--mode", "multiview"]) == 0
    files = sorted(os.listdir(tmp_path / "p"))
    assert files == ["pair_augment_000.png", "pair_augment_001.png", "pair_multiview_000.png"]
    img = cv2.imread(str(tmp_path / "p" / files[0]))
    assert img.shape == (128, 320, 3)
    assert main(["--dataset", str(tmp_path / "nothing"), "--out", str(tmp_path / "q")]) == 2
    assert "nothing" in capsys.readouterr().err
