"""Object pose in the live camera frame from matched reference points: RANSAC + Kabsch (ROS-free).

The reference file holds 3D points of the references in the reference camera frame (``ref_points``,
(N, 3)). In the live frame each reference is matched and back-projected with depth (``live_points``,
(N, 3)); ``valid`` (N,) marks matches that are confident *and* have valid depth (depth-validated).
RANSAC draws minimal sets of 3 valid correspondences (all triples when there are few, else random
ones, evaluated in one batched Kabsch call), keeps the hypothesis with the most inliers (distance
between ``T ref`` and ``live`` below ``inlier_threshold`` metres; ties broken by lower residual) and
refits Kabsch on its inliers. The grasp stored with the reference (``T_ref_grasp``) is then carried
by that pose: ``T_live_grasp = T_live_ref @ T_ref_grasp``.

When fewer than ``min_inliers`` (>= 3) correspondences agree, no pose is returned and ``reason`` says
why, so the caller can fall back to the single-point grasp.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dense_descriptor_grasp.geometry.rigid_fit import fit_residual, kabsch
from dense_descriptor_grasp.geometry.se3 import se3_apply


@dataclass(frozen=True)
class ObjectPoseResult:
    T_live_ref: np.ndarray | None  # (4, 4) or None when no pose
    inliers: np.ndarray            # (N,) bool
    rms: float                     # RMS metres over the inliers (inf when no pose)
    reason: str                    # "" when a pose was found

    @property
    def ok(self) -> bool:
        return self.T_live_ref is not None

    @property
    def n_inliers(self) -> int:
        return int(self.inliers.sum())


def _minimal_sets(candidates: np.ndarray, iterations: int, rng: np.random.Generator) -> np.ndarray:
    n = len(candidates)
    n_triples = n * (n - 1) * (n - 2) // 6
    if n_triples <= iterations:
        return np.array(list(itertools.combinations(candidates, 3)), dtype=np.int64)
    sets = np.stack([rng.choice(candidates, size=3, replace=False) for _ in range(iterations)])
    return sets.astype(np.int64)


def _non_degenerate(points: np.ndarray, min_area: float) -> np.ndarray:
    """(S,) bool: the triangles (S, 3, 3) have an area of at least ``min_area`` m^2."""
    cross = np.cross(points[:, 1] - points[:, 0], points[:, 2] - points[:, 0])
    return 0.5 * np.linalg.norm(cross, axis=-1) >= min_area


def ransac_object_pose(ref_points, live_points, valid=None, inlier_threshold: float = 0.01,
                       iterations: int = 200, min_inliers: int = 3, seed: int = 0,
                       min_triangle_area: float = 1e-6) -> ObjectPoseResult:
    """RANSAC + Kabsch pose ``T_live_ref`` with ``live ~ T_live_ref ref``.

    ref_points (N, 3), live_points (N, 3) metres; valid (N,) bool or None (non-finite rows are invalid
    either way). Returns an :class:`ObjectPoseResult`.
    """
    ref = np.asarray(ref_points, dtype=np.float64)
    live = np.asarray(live_points, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[1] != 3 or ref.shape != live.shape:
        raise ValueError(f"ref_points and live_points must both be (N, 3), got {ref.shape} and {live.shape}")
    if inlier_threshold <= 0:
        raise ValueError(f"inlier_threshold must be > 0 metres, got {inlier_threshold}")
    min_inliers = max(int(min_inliers), 3)
    n = len(ref)
    ok = np.isfinite(ref).all(1) & np.isfinite(live).all(1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool).reshape(n)
    candidates = np.flatnonzero(ok)
    no_inliers = np.zeros(n, dtype=bool)
    if len(candidates) < min_inliers:
        return ObjectPoseResult(None, no_inliers, float("inf"),
                                f"only {len(candidates)} of {n} references matched with valid depth "
                                f"(need {min_inliers} for a 6-DoF pose)")
    rng = np.random.default_rng(seed)
    sets = _minimal_sets(candidates, iterations, rng)
    keep = _non_degenerate(ref[sets], min_triangle_area) & _non_degenerate(live[sets], min_triangle_area)
    sets = sets[keep]
    if len(sets) == 0:
        return ObjectPoseResult(None, no_inliers, float("inf"),
                                "the matched references are (nearly) collinear; the rotation is not determined")
    T = np.asarray(kabsch(ref[sets], live[sets], check=False))                     # (S, 4, 4)
    predicted = np.asarray(se3_apply(T, np.broadcast_to(ref, (len(sets), n, 3)).copy()))  # (S, N, 3)
    err = np.linalg.norm(predicted - live[None], axis=-1)                          # (S, N)
    err = np.where(ok[None], err, np.inf)
    inl = err <= inlier_threshold
    counts = inl.sum(1)
    mean_err = np.where(inl, err, 0.0).sum(1) / np.maximum(counts, 1)
    best = int(np.lexsort((mean_err, -counts))[0])
    inliers = inl[best]
    if inliers.sum() < min_inliers:
        return ObjectPoseResult(None, no_inliers, float("inf"),
                                f"best pose hypothesis has {int(inliers.sum())} inliers within "
                                f"{inlier_threshold * 1000:.0f} mm (need {min_inliers}); matches disagree")
    # refit on the inliers, then re-collect inliers once with the refined pose
    for _ in range(2):
        try:
            T_best = np.asarray(kabsch(ref[inliers], live[inliers]))
        except ValueError as exc:
            return ObjectPoseResult(None, no_inliers, float("inf"), f"inlier set is degenerate: {exc}")
        err_all = np.linalg.norm(np.asarray(se3_apply(T_best, ref)) - live, axis=-1)
        new_inliers = ok & (err_all <= inlier_threshold)
        if new_inliers.sum() < min_inliers or np.array_equal(new_inliers, inliers):
            break
        inliers = new_inliers
    rms = float(fit_residual(T_best, ref[inliers], live[inliers]))
    return ObjectPoseResult(T_best, inliers, rms, "")


def carry_grasp(T_live_ref, T_ref_grasp) -> np.ndarray:
    """(4, 4) grasp in the live camera frame: the reference grasp carried by the object pose."""
    return np.asarray(T_live_ref, dtype=np.float64) @ np.asarray(T_ref_grasp, dtype=np.float64)
