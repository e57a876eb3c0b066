"""SE(3) and SO(3): composition, inverse, exp/log maps and quaternions, batched and differentiable.

Poses are ``(*B, 4, 4)`` homogeneous matrices; ``T_a_b`` maps points in frame b to frame a. se(3) vectors are
``(*B, 6)`` ordered ``(rho, omega)``: translation part first, rotation (axis-angle) last, so that
``se3_exp(xi) = [[exp(omega^), V(omega) rho], [0, 1]]``. Quaternions are ``(x, y, z, w)`` as in ROS messages.

Numerical care: the coefficients ``sin(t)/t``, ``(1-cos t)/t^2``, ``(t - sin t)/t^3`` and the inverse-V coefficient
use Taylor series below ``SMALL_ANGLE``; ``so3_log`` goes through a quaternion chosen by Shepperd's method, so it
is stable near the identity and near a rotation of pi; square roots are clamped so that gradients of
branches not taken stay finite. Every function accepts numpy (returns numpy) or torch.
"""
from __future__ import annotations

import torch

from ._backend import numpy_compatible

__all__ = [
    "hat",
    "make_se3",
    "se3_inverse",
    "se3_compose",
    "se3_apply",
    "so3_exp",
    "so3_log",
    "se3_exp",
    "se3_log",
    "quaternion_from_matrix",
    "matrix_from_quaternion",
    "rotation_angle",
]

SMALL_ANGLE = 0.1  # radians; below it the series (to t^4) are exact to ~1e-10


def hat(omega: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric matrix ``(*B, 3, 3)`` of ``omega (*B, 3)`` so that ``hat(w) @ x = w x x``."""
    wx, wy, wz = omega.unbind(-1)
    zero = torch.zeros_like(wx)
    return torch.stack(
        [
            torch.stack([zero, -wz, wy], dim=-1),
            torch.stack([wz, zero, -wx], dim=-1),
            torch.stack([-wy, wx, zero], dim=-1),
        ],
        dim=-2,
    )


@numpy_compatible
def make_se3(R, t):
    """``(*B, 4, 4)`` pose from rotation ``R (*B, 3, 3)`` and translation ``t (*B, 3)``."""
    t = t.to(R.dtype)
    top = torch.cat([R, t.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros(R.shape[:-2] + (1, 4), dtype=R.dtype, device=R.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


@numpy_compatible
def se3_inverse(T):
    """Inverse ``(*B, 4, 4)`` of a rigid transform: ``[[R^T, -R^T t], [0, 1]]``."""
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    Rt = R.transpose(-1, -2)
    return make_se3(Rt, -(Rt @ t.unsqueeze(-1)).squeeze(-1))


@numpy_compatible
def se3_compose(T_a_b, T_b_c):
    """``T_a_c = T_a_b @ T_b_c`` for ``(*B, 4, 4)`` poses (broadcasting)."""
    return T_a_b @ T_b_c.to(T_a_b.dtype)


@numpy_compatible
def se3_apply(T, points):
    """Apply ``T (*B, 4, 4)`` to ``points (*B, N, 3)``: ``R x + t``, returns ``(*B, N, 3)``."""
    T = T.to(points.dtype)
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    return points @ R.transpose(-1, -2) + t.unsqueeze(-2)


def _series_coefficients(theta: torch.Tensor):
    """A = sin t / t, B = (1 - cos t) / t^2, C = (t - sin t) / t^3, stable at t -> 0."""
    small = theta < SMALL_ANGLE
    t = torch.where(small, torch.ones_like(theta), theta)  # safe value where the series is used
    t2s = theta * theta
    A = torch.where(small, 1 - t2s / 6 + t2s * t2s / 120, torch.sin(t) / t)
    B = torch.where(small, 0.5 - t2s / 24 + t2s * t2s / 720, (1 - torch.cos(t)) / (t * t))
    C = torch.where(small, 1.0 / 6 - t2s / 120 + t2s * t2s / 5040, (t - torch.sin(t)) / (t * t * t))
    return A, B, C


def _safe_norm(x: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    """Euclidean norm over the last axis whose gradient is finite at 0."""
    return torch.sqrt(torch.clamp((x * x).sum(-1), min=eps))


@numpy_compatible
def so3_exp(omega):
    """Rodrigues: rotation ``(*B, 3, 3)`` of axis-angle ``omega (*B, 3)``."""
    theta = _safe_norm(omega)
    A, B, _ = _series_coefficients(theta)
    K = hat(omega)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand(K.shape)
    return eye + A[..., None, None] * K + B[..., None, None] * (K @ K)


@numpy_compatible
def quaternion_from_matrix(R):
    """Unit quaternion ``(*B, 4)`` as ``(x, y, z, w)`` with ``w >= 0`` from a rotation ``(*B, 3, 3)``.

    Shepperd's method: of the four algebraically equal formulas, the one with the largest denominator is used,
    so the result is accurate for every rotation (including angles near pi).
    """
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    trace = m00 + m11 + m22
    # 4 * q_i^2 for i = w, x, y, z; clamped so sqrt and its gradient stay finite on every branch.
    candidates = torch.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    s = 2 * torch.sqrt(torch.clamp(candidates, min=1e-12))  # s_i = 4 |q_i|
    r21_12 = R[..., 2, 1] - R[..., 1, 2]
    r02_20 = R[..., 0, 2] - R[..., 2, 0]
    r10_01 = R[..., 1, 0] - R[..., 0, 1]
    r01p10 = R[..., 0, 1] + R[..., 1, 0]
    r02p20 = R[..., 0, 2] + R[..., 2, 0]
    r12p21 = R[..., 1, 2] + R[..., 2, 1]
    sw, sx, sy, sz = s.unbind(-1)
    # each row: (x, y, z, w)
    from_w = torch.stack([r21_12 / sw, r02_20 / sw, r10_01 / sw, sw / 4], dim=-1)
    from_x = torch.stack([sx / 4, r01p10 / sx, r02p20 / sx, r21_12 / sx], dim=-1)
    from_y = torch.stack([r01p10 / sy, sy / 4, r12p21 / sy, r02_20 / sy], dim=-1)
    from_z = torch.stack([r02p20 / sz, r12p21 / sz, sz / 4, r10_01 / sz], dim=-1)
    all_q = torch.stack([from_w, from_x, from_y, from_z], dim=-2)  # (*B, 4, 4)
    best = candidates.argmax(dim=-1)
    q = torch.gather(all_q, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = torch.where(q[..., 3:4] < 0, -q, q)
    return q / _safe_norm(q)[..., None]


@numpy_compatible
def matrix_from_quaternion(q):
    """Rotation ``(*B, 3, 3)`` from a quaternion ``(*B, 4)`` ``(x, y, z, w)`` (normalised first).

    Raises:
        ValueError: when a quaternion has (near) zero norm.
    """
    norm = torch.linalg.norm(q, dim=-1, keepdim=True)
    if bool((norm < 1e-12).any()):
        raise ValueError("quaternion has zero norm; expected (x, y, z, w) with a non-zero length")
    x, y, z, w = (q / norm).unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], dim=-1),
            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], dim=-1),
            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], dim=-1),
        ],
        dim=-2,
    )


@numpy_compatible
def so3_log(R):
    """Axis-angle ``(*B, 3)`` (angle in [0, pi]) of a rotation ``(*B, 3, 3)``.

    Via the quaternion ``(v, w)`` with ``w >= 0``: ``theta = 2 atan2(|v|, w)`` and ``omega = theta v / |v|``,
    with the series ``theta / |v| ~ 2 / w (1 - |v|^2 / (3 w^2))`` for small ``|v|``.
    """
    q = quaternion_from_matrix(R)
    v, w = q[..., :3], q[..., 3]
    n = _safe_norm(v)
    small = n < 1e-4
    n_safe = torch.where(small, torch.ones_like(n), n)
    w_safe = torch.where(small, w, torch.ones_like(w))  # w ~ 1 where |v| is small
    scale = torch.where(small, 2 / w_safe * (1 - n * n / (3 * w_safe * w_safe)), 2 * torch.atan2(n, w) / n_safe)
    return scale[..., None] * v


def rotation_angle(R):
    """Rotation angle in radians ``(*B,)`` of ``R (*B, 3, 3)``, in [0, pi]."""
    omega = so3_log(R)
    if isinstance(omega, torch.Tensor):
        return _safe_norm(omega)
    import numpy as np

    return np.linalg.norm(omega, axis=-1)


@numpy_compatible
def se3_exp(xi):
    """Pose ``(*B, 4, 4)`` of a twist ``xi (*B, 6) = (rho, omega)``: ``R = exp(omega^)``, ``t = V rho``."""
    rho, omega = xi[..., :3], xi[..., 3:]
    theta = _safe_norm(omega)
    A, B, C = _series_coefficients(theta)
    K = hat(omega)
    KK = K @ K
    eye = torch.eye(3, dtype=xi.dtype, device=xi.device).expand(K.shape)
    R = eye + A[..., None, None] * K + B[..., None, None] * KK
    V = eye + B[..., None, None] * K + C[..., None, None] * KK
    t = (V @ rho.unsqueeze(-1)).squeeze(-1)
    return make_se3(R, t)


@numpy_compatible
def se3_log(T):
    """Twist ``(*B, 6) = (rho, omega)`` of a pose ``(*B, 4, 4)``; inverse of :func:`se3_exp`.

    ``rho = V^-1 t`` with ``V^-1 = I - K/2 + D K^2``, ``D = (1 - A / (2 B)) / theta^2`` (series below ``SMALL_ANGLE``).
    """
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    omega = so3_log(R)
    theta = _safe_norm(omega)
    small = theta < SMALL_ANGLE
    th = torch.where(small, torch.ones_like(theta), theta)
    t2s = theta * theta
    D = torch.where(
        small,
        1.0 / 12 + t2s / 720 + t2s * t2s / 30240,
        (1 - th * torch.sin(th) / (2 * (1 - torch.cos(th)))) / (th * th),
    )
    K = hat(omega)
    eye = torch.eye(3, dtype=T.dtype, device=T.device).expand(K.shape)
    V_inv = eye - 0.5 * K + D[..., None, None] * (K @ K)
    rho = (V_inv @ t.unsqueeze(-1)).squeeze(-1)
    return torch.cat([rho, omega], dim=-1)
