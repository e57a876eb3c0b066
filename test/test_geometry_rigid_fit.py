import numpy as np
import pytest
import torch

from dense_descriptor_grasp.geometry import DegeneratePointsError, fit_residual, kabsch, se3_apply, se3_exp, se3_inverse, se3_log


def test_kabsch_recovers_random_transform_from_noisy_points():
    rng = np.random.default_rng(3)
    for _ in range(20):
        T = se3_exp(rng.normal(size=6) * [0.3, 0.3, 0.3, 1.0, 1.0, 1.0])
        src = rng.uniform(-0.2, 0.2, size=(300, 3))
        dst = se3_apply(T, src) + rng.normal(scale=1e-3, size=src.shape)
        T_fit = kabsch(src, dst)
        err = se3_log(se3_inverse(T) @ T_fit)
        assert np.linalg.norm(err[3:]) < 0.02 and np.linalg.norm(err[:3]) < 2e-3
        assert fit_residual(T_fit, src, dst) < 2.5e-3


def test_kabsch_weights_ignore_outliers():
    rng = np.random.default_rng(4)
    T = se3_exp(np.array([0.1, 0, 0, 0, 0.5, 0]))
    src = rng.normal(size=(50, 3))
    dst = se3_apply(T, src)
    dst[:10] += 5.0
    w = np.ones(50)
    w[:10] = 0
    assert np.allclose(kabsch(src, dst, w), T, atol=1e-9)


def test_kabsch_never_returns_a_reflection():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(20, 3))
    dst = src * np.array([1, 1, -1])  # a mirror image
    R = kabsch(src, dst)[:3, :3]
    assert np.isclose(np.linalg.det(R), 1.0)


def test_kabsch_batched_and_differentiable():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(3, 10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    T = se3_exp(torch.randn(3, 6, generator=g, dtype=torch.float64))
    dst = se3_apply(T, src.detach()) + 0.01 * torch.randn(3, 10, 3, generator=g, dtype=torch.float64)
    T_fit = kabsch(src, dst)
    se3_log(se3_inverse(T) @ T_fit).norm(dim=-1).sum().backward()
    assert T_fit.shape == (3, 4, 4) and torch.isfinite(src.grad).all() and src.grad.abs().sum() > 0


def test_kabsch_errors_on_too_few_or_collinear_points():
    with pytest.raises(DegeneratePointsError, match="at least 3"):
        kabsch(np.zeros((2, 3)), np.zeros((2, 3)))
    line = np.outer(np.arange(5.0), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="collinear"):
        kabsch(line, line)
