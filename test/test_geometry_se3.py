import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dense_descriptor_grasp.geometry import (
    make_se3,
    matrix_from_quaternion,
    quaternion_from_matrix,
    rotation_angle,
    se3_apply,
    se3_compose,
    se3_exp,
    se3_inverse,
    se3_log,
    so3_exp,
    so3_log,
)

finite = st.floats(-2.0, 2.0, allow_nan=False)


def _axis(a):
    a = np.asarray(a, dtype=np.float64)
    n = np.linalg.norm(a)
    return a / n if n > 1e-3 else np.array([0.0, 0.0, 1.0])


angles = st.one_of(
    st.floats(0.0, 1e-6), st.floats(1e-6, 1e-2), st.floats(1e-2, np.pi - 1e-2),
    st.floats(np.pi - 1e-2, np.pi - 1e-9),
)


@settings(max_examples=200, deadline=None)
@given(axis=st.tuples(finite, finite, finite), angle=angles, rho=st.tuples(finite, finite, finite))
def test_se3_exp_log_round_trip(axis, angle, rho):
    xi = np.concatenate([np.array(rho), _axis(axis) * angle])
    T = se3_exp(xi)
    # below SMALL_ANGLE the series stop at t^4, exact to ~1e-10 (se3.py): e.g. t = 0.094 is off by 2e-12
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-10)
    assert np.allclose(se3_log(T), xi, atol=1e-8)


@settings(max_examples=100, deadline=None)
@given(axis=st.tuples(finite, finite, finite), angle=angles)
def test_so3_log_exp_round_trip_matrix(axis, angle):
    R = so3_exp(_axis(axis) * angle)
    assert np.allclose(so3_exp(so3_log(R)), R, atol=1e-9)
    assert np.isclose(rotation_angle(R), angle, atol=1e-8)


def test_log_at_exactly_pi_is_a_valid_axis_angle():
    for axis in np.eye(3):
        R = so3_exp(axis * np.pi)
        omega = so3_log(R)
        assert np.isclose(np.linalg.norm(omega), np.pi)
        assert np.allclose(so3_exp(omega), R, atol=1e-12)


def test_inverse_compose_apply():
    rng = np.random.default_rng(1)
    T = se3_exp(rng.normal(size=(5, 6)))
    eye = np.broadcast_to(np.eye(4), (5, 4, 4))
    assert np.allclose(se3_compose(T, se3_inverse(T)), eye, atol=1e-12)
    pts = rng.normal(size=(5, 7, 3))
    back = se3_apply(se3_inverse(T), se3_apply(T, pts))
    assert np.allclose(back, pts, atol=1e-12)


def test_quaternion_round_trip_and_ros_order():
    # 90 degrees about z: ROS quaternion (x, y, z, w) = (0, 0, sin 45, cos 45)
    R = so3_exp(np.array([0, 0, np.pi / 2]))
    q = quaternion_from_matrix(R)
    assert np.allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    rng = np.random.default_rng(2)
    Rs = so3_exp(rng.normal(size=(50, 3)) * 2)
    assert np.allclose(matrix_from_quaternion(quaternion_from_matrix(Rs)), Rs, atol=1e-12)
    with pytest.raises(ValueError, match="zero norm"):
        matrix_from_quaternion(np.zeros(4))


@pytest.mark.parametrize("angle", [0.0, 1e-5, 0.5, np.pi - 1e-4])
def test_log_is_differentiable_with_finite_gradients(angle):
    xi = torch.tensor([0.1, -0.2, 0.3, 0.0, 0.0, angle], dtype=torch.float64, requires_grad=True)
    T = se3_exp(xi)
    out = se3_log(T).norm()
    out.backward()
    assert torch.isfinite(xi.grad).all()


def test_float32_torch_near_identity_is_accurate():
    xi = torch.tensor([[0.01, 0.02, -0.03, 1e-4, -2e-4, 3e-4]], dtype=torch.float32)
    assert torch.allclose(se3_log(se3_exp(xi)), xi, atol=1e-6)


def test_make_se3_batch_shapes():
    R = np.broadcast_to(np.eye(3), (2, 4, 3, 3))
    t = np.zeros((2, 4, 3))
    assert make_se3(R, t).shape == (2, 4, 4, 4)
