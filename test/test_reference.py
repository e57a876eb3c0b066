import json

import numpy as np
import pytest

from dense_descriptor_grasp.grasping.reference import (Reference, ReferenceMismatchError, interior_samples,
                                                       load_reference, save_reference)


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


def test_empty_or_foreign_npz_is_one_clear_error(tmp_path):
    """Issue 12, item 7: an empty .npz raised EOFError (a traceback past the node's startup handler); random bytes
    passed on numpy's advice to load the file unsafely."""
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz could not be read: the file is empty"):
        load_reference(tmp_path / "empty.npz")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="random.npz could not be read: not an .npz archive") as info:
        load_reference(tmp_path / "random.npz")
    assert "pickle" not in str(info.value) and "\n" not in str(info.value)
    good = save_reference(tmp_path / "good.npz", make_reference())
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.npz could not be read"):
        load_reference(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="grasp_index"):
        Reference("m", np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 3)), grasp_index=5)


def test_interior_samples_spread_inside_mask_away_from_references():
    """The demo's surface points: inside the eroded mask with depth, away from the named parts, >= 6 px apart."""
    mask = np.zeros((40, 60), bool)
    mask[5:35, 10:50] = True
    depth = np.where(mask, 0.4, 0.0).astype(np.float32)
    depth[5:35, 40:50] = 0.0                                      # no depth on the right: never sampled
    pts = interior_samples(mask, 4, margin=2, depth=depth, avoid=[(30.0, 20.0)], min_separation=6.0)
    assert len(pts) == 4 and all(isinstance(c, int) for p in pts for c in p)
    for u, v in pts:
        assert 12 <= u <= 39 and 7 <= v <= 32                     # 2 px inside the mask and left of the no-depth band
        assert np.hypot(u - 30, v - 20) >= 6.0
    assert min(np.hypot(a[0] - b[0], a[1] - b[1]) for i, a in enumerate(pts) for b in pts[i + 1:]) >= 6.0
    # the first pick is the interior pixel farthest from the avoided one: a corner of the interior
    assert pts[0] in [(12, 7), (12, 32)]
    # a separation the interior cannot give ends the sampling early
    assert len(interior_samples(mask, 50, margin=2, depth=depth, avoid=[(30.0, 20.0)], min_separation=6.0)) < 50


def test_interior_samples_without_avoid_start_at_the_centre_and_stop_when_used_up():
    """The grasp benchmark's extra references: the centre first, then farthest-point; never a pixel twice."""
    mask = np.zeros((30, 30), np.uint8)
    mask[10:21, 5:26] = 255                                       # 21 x 11, centre (15, 15)
    pts = interior_samples(mask, 3, margin=1)
    assert pts[0] == (15, 15) and set(pts[1:]) <= {(6, 11), (6, 19), (24, 11), (24, 19)}
    small = np.zeros((10, 10), bool)
    small[4:7, 4:7] = True                                        # 3 x 3: a single pixel after erosion by 1
    assert interior_samples(small, 5, margin=1) == [(5, 5)]
    assert interior_samples(small, 9, margin=0)[:5] == interior_samples(small, 5, margin=0)
    assert len(set(interior_samples(small, 20, margin=0))) == 9
    assert interior_samples(small, 5, margin=2) == [] and interior_samples(small, 0) == []
