import numpy as np
import pytest

from nodes_harness import write_tiny_checkpoint

from dense_descriptor_grasp.grasping.make_reference import main
from dense_descriptor_grasp.grasping.reference import load_reference


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import cv2

    folder = tmp_path_factory.mktemp("make_reference")
    ckpt = write_tiny_checkpoint(folder / "tiny.pt", descriptor_dim=6)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "rgb.png"), rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    depth = np.full((64, 80), 600, np.uint16)
    depth[:, :10] = 0
    cv2.imwrite(str(folder / "depth.png"), depth)
    return folder, ckpt


def test_writes_reference_with_3d_points(files, capsys):
    folder, ckpt = files
    out = folder / "ref.npz"
    code = main(["--model", str(ckpt), "--rgb", str(folder / "rgb.png"), "--depth", str(folder / "depth.png"),
                 "--K", "100,100,40,32", "--pixel", "40,32", "--pixel", "60,10", "--pixel", "5,5",
                 "--name", "a", "--name", "b", "--name", "c", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    from dense_descriptor_grasp.model import load_model
    ref = load_reference(out, model_identity=load_model(ckpt).identity, descriptor_dim=6)
    assert ref.names == ["a", "b", "c"] and ref.descriptors.shape == (3, 6)
    np.testing.assert_allclose(ref.points[0], [0, 0, 0.6], atol=1e-6)
    np.testing.assert_allclose(ref.points[1], [0.2 * 0.6, -0.22 * 0.6, 0.6], atol=1e-6)
    assert np.isnan(ref.points[2]).all()                 # no depth there: kept, flagged by NaN
    np.testing.assert_allclose(ref.T_ref_grasp[:3, 2], [0, 0, 1], atol=1e-6)   # flat surface: straight in
    np.testing.assert_allclose(np.linalg.norm(ref.descriptors, axis=1), 1, atol=1e-5)


def test_errors_are_clear(files, capsys):
    folder, ckpt = files
    base = ["--model", str(ckpt), "--rgb", str(folder / "rgb.png"), "--depth", str(folder / "depth.png"),
            "--K", "100,100,40,32", "--output", str(folder / "bad.npz")]
    assert main(base + ["--pixel", "500,5"]) == 2 and "outside" in capsys.readouterr().err
    assert main(base + ["--pixel", "3,3"]) == 2 and "no valid depth" in capsys.readouterr().err
    assert main(base + ["--pixel", "30,30", "--name", "a", "--name", "b"]) == 2
    assert not (folder / "bad.npz").exists()


def test_reference_from_a_dataset_view(tmp_path, files, capsys):
    import cv2

    from dense_descriptor_grasp.data.generate import generate_dataset
    from dense_descriptor_grasp.data.render import RenderConfig

    _, ckpt = files
    root = tmp_path / "ds"
    generate_dataset(str(root), ["duck"], num_views=2, config=RenderConfig(width=80, height=64))
    mask = cv2.imread(str(root / "mask" / "000001.png"), cv2.IMREAD_UNCHANGED) > 0
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    vs, us = np.nonzero(mask)
    picks = [0, len(us) // 2, len(us) - 1]
    pixels = [f"{us[i]},{vs[i]}" for i in picks]
    out = tmp_path / "ref.json"
    args = ["--model", str(ckpt), "--dataset", str(root), "--view", "000001", "--output", str(out)]
    for p in pixels:
        args += ["--pixel", p]
    assert main(args) == 0, capsys.readouterr().err
    ref = load_reference(out, descriptor_dim=6)
    assert np.isfinite(ref.points).all() and "000001" in ref.source
    assert 0.05 < ref.points[:, 2].min() and ref.points[:, 2].max() < 3.0
    assert main(args[:-2] + ["--view", "7"] + args[-2:]) == 2 and "outside" in capsys.readouterr().err


def test_the_make_reference_console_script_runs_this_main():
    """setup.py's CONSOLE_SCRIPTS entry follows the module (it moved to grasping/ next to the grasping code)."""
    import ast
    import importlib
    from pathlib import Path

    setup = Path(__file__).resolve().parents[1] / "setup.py"
    scripts = next(ast.literal_eval(n.value) for n in ast.parse(setup.read_text()).body
                   if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "CONSOLE_SCRIPTS" for t in n.targets))
    module, function = scripts["make_reference"].split(":")
    assert getattr(importlib.import_module(module), function) is main


def test_a_reference_next_to_the_outline_gets_a_warning(files, capsys):
    """A pixel 1 px from where the depth ends (the outline) is kept but named; one well inside is not."""
    folder, ckpt = files
    base = ["--model", str(ckpt), "--rgb", str(folder / "rgb.png"), "--depth", str(folder / "depth.png"),
            "--K", "100,100,40,32", "--output", str(folder / "edge.npz")]
    assert main(base + ["--pixel", "40,32", "--pixel", "11,30", "--name", "inside", "--name", "rim"]) == 0
    err = capsys.readouterr().err
    assert "reference 1 ('rim') at (11, 30) lies within 2 px of the object's outline" in err
    assert "reference 0" not in err
    assert main(base + ["--pixel", "40,32", "--pixel", "13,30"]) == 0
    assert "outline" not in capsys.readouterr().err
