import numpy as np
import pytest

from nodes_harness import write_tiny_checkpoint

from dense_descriptor_grasp.grasping.reference import load_reference
from dense_descriptor_grasp.make_reference import main


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
