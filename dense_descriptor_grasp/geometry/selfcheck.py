"""`geometry_selfcheck`: a quick numeric self-check of the geometry core (runs in a second, prints a summary)."""
from __future__ import annotations

import argparse

import numpy as np

from .camera import backproject, project
from .rigid_fit import fit_residual, kabsch
from .se3 import se3_apply, se3_exp, se3_inverse, se3_log


def run_selfcheck(seed: int = 0, num_points: int = 200) -> dict:
    """Round-trips exp/log, projection and a noisy Kabsch fit; returns the worst errors seen."""
    rng = np.random.default_rng(seed)
    xi = rng.normal(size=(64, 6))
    xi[:, 3:] *= np.pi / np.linalg.norm(xi[:, 3:], axis=1, keepdims=True) * rng.uniform(0, 0.999, (64, 1))
    exp_log = float(np.abs(se3_log(se3_exp(xi)) - xi).max())
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    pts = rng.uniform([-0.3, -0.3, 0.5], [0.3, 0.3, 1.5], size=(num_points, 3))
    uv, z = project(pts, K)
    proj = float(np.abs(backproject(uv, z, K) - pts).max())
    T = se3_exp(xi[0])
    noisy = se3_apply(T, pts) + rng.normal(scale=1e-3, size=pts.shape)
    T_fit = kabsch(pts, noisy)
    pose_err = float(np.linalg.norm(se3_log(se3_inverse(T) @ T_fit)))
    return {
        "exp_log_max_error": exp_log,
        "projection_round_trip_max_error_m": proj,
        "kabsch_pose_error_1mm_noise": pose_err,
        "kabsch_rms_residual_m": float(fit_residual(T_fit, pts, noisy)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run_selfcheck(args.seed)
    for key, value in result.items():
        print(f"{key:40s} {value:.3e}")
    ok = result["exp_log_max_error"] < 1e-9 and result["projection_round_trip_max_error_m"] < 1e-9 and result["kabsch_pose_error_1mm_noise"] < 1e-2
    print("geometry self-check:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
