import numpy as np
import pytest
import torch

from dense_descriptor_grasp.grasping.preview import descriptor_preview, preview_projection


@pytest.mark.parametrize("d", [3, 8, 16, 64])
def test_projection_is_fixed_and_orthonormal(d):
    P = preview_projection(d)
    assert P.shape == (3, d)
    np.testing.assert_allclose(P @ P.T, np.eye(3), atol=1e-5)
    np.testing.assert_array_equal(P, preview_projection(d))


def test_same_descriptor_same_colour_in_every_frame():
    rng = np.random.default_rng(0)
    palette = rng.standard_normal((16, 5)).astype(np.float32)
    frame_a = palette[:, rng.integers(0, 5, (20, 30))]
    frame_b = palette[:, rng.integers(0, 5, (24, 16))] * 3.0    # other layout, other scale
    a, b = descriptor_preview(frame_a), descriptor_preview(torch.from_numpy(frame_b))
    assert a.shape == (20, 30, 3) and a.dtype == np.uint8 and b.shape == (24, 16, 3)
    colours_a = {tuple(a[i, j]) for i in range(20) for j in range(30)}
    colours_b = {tuple(b[i, j]) for i in range(24) for j in range(16)}
    assert len(colours_a) == 5
    assert colours_b <= colours_a
    assert not np.array_equal(preview_projection(8), preview_projection(9)[:, :8])


def test_random_descriptors_use_the_colour_range_and_bad_shape_raises():
    x = np.random.default_rng(1).standard_normal((16, 40, 40)).astype(np.float32)
    img = descriptor_preview(x)
    assert img.std() > 30 and img.min() < 40 and img.max() > 215
    with pytest.raises(ValueError, match=r"\(D, H, W\)"):
        descriptor_preview(np.zeros((4, 5)))
