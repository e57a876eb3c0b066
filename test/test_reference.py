import json

import numpy as np
import pytest

from dense_descriptor_grasp.grasping.reference import (Reference, ReferenceMismatchError, load_reference,
                                                       save_reference)


def make_reference(d=6, r=4):
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.1, 0.1, (r, 3)) + [0, 0, 0.6]
    points[2] = np.nan                                            # a reference without depth
    T = np.eye(4)
    T[:3, 3] = points[1]
    return Reference(model_identity="keypoint-D6-abc123", descriptors=rng.standard_normal((r, d)),
                     pixels=rng.uniform(0, 60, (r, 2)), points=points, names=["handle", "lid", "spout", "base"],
                     method="keypoint", K=[[100, 0, 40], [0, 100, 30], [0, 0, 1]], image_size=(60, 80),
                     T_ref_grasp=T, grasp_index=1, source="dataset data/x view 3")


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip(tmp_path, suffix):
    ref = make_reference()
    path = save_reference(tmp_path / ("ref" + suffix), ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]     # no temp file left behind
    back = load_reference(path, model_identity="keypoint-D6-abc123", descriptor_dim=6)
    np.testing.assert_allclose(back.descriptors, ref.descriptors.astype(np.float32))
    np.testing.assert_allclose(back.pixels, ref.pixels)
    np.testing.assert_array_equal(np.isnan(back.points), np.isnan(ref.points))
    np.testing.assert_allclose(back.points[[0, 1, 3]], ref.points[[0, 1, 3]])
    np.testing.assert_allclose(back.T_ref_grasp, ref.T_ref_grasp)
    assert back.names == ref.names and back.grasp_index == 1 and back.image_size == (60, 80)
    assert back.method == "keypoint" and back.source == ref.source and back.descriptor_dim == 6


def test_refuses_another_model_or_dimension(tmp_path):
    path = save_reference(tmp_path / "ref.npz", make_reference())
    with pytest.raises(ReferenceMismatchError, match="keypoint-D6-abc123.*other-model"):
        load_reference(path, model_identity="other-model")
    with pytest.raises(ReferenceMismatchError, match="D=6.*D=16"):
        load_reference(path, descriptor_dim=16)
    assert load_reference(path).descriptor_dim == 6                   # no expectation -> no check


def test_malformed_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_reference"):
        load_reference(tmp_path / "missing.npz")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="bad.json.*format"):
        load_reference(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_reference(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="extension"):
        save_reference(tmp_path / "ref.txt", make_reference())
    with pytest.raises(ValueError, match="grasp_index"):
        Reference("m", np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 3)), grasp_index=5)
