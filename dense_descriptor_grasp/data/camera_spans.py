"""The camera spans of the training data, in one place: :data:`TRAINING_CAMERA_SPANS`.

A generated view's camera is described by five numbers relative to the scene's **target** object (centre ``c``,
bounding-sphere radius ``r`` of its visual mesh):

* ``elevation_deg``: angle of the optical axis below the horizontal (90 = looking straight down);
* ``distance_factor``: depth of ``c`` along the optical axis divided by :func:`fit_distance`, the distance at
  which the target's bounding sphere just fills the image (the smaller of the vertical and horizontal field of
  view counts); 1 = the target fills the view, 2 = it covers about half of it. Other objects of the scene may be
  cut by the image border;
* ``roll_deg``: rotation about the optical axis relative to a level camera (world z up appears upwards);
* ``fov_deg``: vertical field of view (``K`` differs per view: ``fy = (H / 2) / tan(fov / 2)``);
* ``look_at_offset``: ``c`` in the camera frame divided by ``r``, x and y components (0 = the target centre is on
  the optical axis).

:func:`camera_parameters` computes them for any camera (used to check that the robot's cameras lie inside the
spans: ``test/test_data_camera_spans.py``); the generator's sampler (``render.sample_camera``) draws them uniformly
inside a :class:`CameraSpans`, so :func:`camera_parameters` of a drawn camera returns the drawn values.
Pure numpy (no pybullet, no torch).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CameraSpans", "TRAINING_CAMERA_SPANS", "EVALUATION_CAMERA_SPANS", "CAMERA_SPANS", "fit_distance", "camera_parameters", "fov_from_K"]


def _range(name, value, lo_bound, hi_bound):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"CameraSpans.{name} must be a (min, max) pair, got {value!r}") from None
    if not (lo_bound <= lo <= hi <= hi_bound):
        raise ValueError(f"CameraSpans.{name} must satisfy {lo_bound} <= min <= max <= {hi_bound}, got {value!r}")
    return (lo, hi)


@dataclass(frozen=True)
class CameraSpans:
    """Uniform ranges of the per-view camera (angles in degrees). See the module docstring for the definitions.

    The distance factor is drawn log-uniformly (as many near as far views per octave), the others uniformly.

    The defaults contain (``test/test_data_camera_spans.py``) the demo's sim camera (``nodes/sim_camera_node.py``
    with ``config/grasp.yaml``: elevation 55 deg, fov 50 deg, roll 0, distance factor 1.35-1.7, the duck up to
    ~0.7-0.9 radii off the axis) and the grasp benchmark's renders (``benchmarks/grasp_sim.py``: elevation
    35-75 deg, fov 50 deg, roll +-10 deg, distance factor 1.7-3.6 because its radius is the physics AABB's half
    diagonal, ~1.8x the duck's visual bounding radius; its reference camera: elevation 50 deg, distance factor
    2.4, roll 0). Hence distance factors up to 4 and roll +-30 deg (the robot's cameras are level to +-10 deg;
    every degree of roll the network must also be invariant to costs CPU training minutes: ``--roll 180`` for a
    wrist camera that turns freely).
    """

    elevation_deg: tuple = (15.0, 85.0)
    distance_factor: tuple = (0.8, 4.0)  # log-uniform
    roll_deg: float = 30.0               # +- about the optical axis
    fov_deg: tuple = (40.0, 65.0)        # vertical field of view, drawn per view
    look_at_offset: float = 1.0          # +- target centre off the optical axis, x and y, in target radii

    def __post_init__(self):
        object.__setattr__(self, "elevation_deg", _range("elevation_deg", self.elevation_deg, 1e-6, 90.0))
        object.__setattr__(self, "distance_factor", _range("distance_factor", self.distance_factor, 1e-6, 1e6))
        object.__setattr__(self, "fov_deg", _range("fov_deg", self.fov_deg, 1.0, 170.0))
        if not (0.0 <= float(self.roll_deg) <= 180.0):
            raise ValueError(f"CameraSpans.roll_deg must be in [0, 180], got {self.roll_deg!r}")
        if not (0.0 <= float(self.look_at_offset) <= 10.0):
            raise ValueError(f"CameraSpans.look_at_offset must be in [0, 10], got {self.look_at_offset!r}")
        object.__setattr__(self, "roll_deg", float(self.roll_deg))
        object.__setattr__(self, "look_at_offset", float(self.look_at_offset))

    def as_dict(self) -> dict:
        """JSON-ready dict (ranges as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def violations(self, params: dict, tol: float = 1e-6) -> list:
        """The keys of :func:`camera_parameters`'s ``params`` that lie outside these spans (empty = inside)."""
        out = []
        for key in ("elevation_deg", "distance_factor", "fov_deg"):
            lo, hi = getattr(self, key)
            if not (lo - tol <= params[key] <= hi + tol):
                out.append(f"{key} {params[key]:.4g} outside [{lo:g}, {hi:g}]")
        if abs(params["roll_deg"]) > self.roll_deg + tol:
            out.append(f"roll_deg {params['roll_deg']:.4g} outside +-{self.roll_deg:g}")
        for k, v in zip("xy", params["look_at_offset"]):
            if abs(v) > self.look_at_offset + tol:
                out.append(f"look_at_offset {k} {v:.4g} outside +-{self.look_at_offset:g}")
        return out


#: The spans ``generate_dataset`` draws from by default (CLI and Python). The one place they are written down.
TRAINING_CAMERA_SPANS = CameraSpans()

# The robot's view, for held-out evaluation sets (``generate_dataset --cameras evaluation``): a level camera above
# a table-top object, as the sim camera (elevation 55, factor 1.35-1.7) and the grasp benchmark (elevation 35-75,
# factor 1.7-3.6, roll +-10) see it. Inside the training spans (tested), so evaluation asks for generalisation to
# new scenes, objects, floors and light, not to cameras outside what was trained.
EVALUATION_CAMERA_SPANS = CameraSpans(elevation_deg=(25.0, 80.0), distance_factor=(1.2, 3.6), roll_deg=15.0,
                                      fov_deg=(45.0, 60.0), look_at_offset=0.6)
CAMERA_SPANS = {"training": TRAINING_CAMERA_SPANS, "evaluation": EVALUATION_CAMERA_SPANS}


def fit_distance(radius: float, fov_deg: float, width: int, height: int) -> float:
    """Distance at which a sphere of ``radius`` just fills the narrower of the two fields of view of a camera with
    vertical field of view ``fov_deg`` and image ``width x height`` (square pixels)."""
    half_fov = math.radians(fov_deg) / 2.0
    half_fov_x = math.atan(math.tan(half_fov) * width / height)
    return float(radius) / math.sin(min(half_fov, half_fov_x))


def fov_from_K(K, height: int) -> float:
    """Vertical field of view in degrees of intrinsics ``K`` for an image ``height`` pixels high."""
    return math.degrees(2.0 * math.atan((height / 2.0) / float(np.asarray(K)[1, 1])))


def camera_parameters(T_world_camera, K, width: int, height: int, target_center, target_radius: float) -> dict:
    """The five span quantities of one camera (optical frame, world z up) relative to a target sphere.

    Returns ``{"elevation_deg", "distance_factor", "roll_deg", "fov_deg", "look_at_offset": (x, y)}``.
    """
    T = np.asarray(T_world_camera, dtype=np.float64)
    R, eye = T[:3, :3], T[:3, 3]
    x_cam, z_cam = R[:, 0], R[:, 2]
    elevation = math.degrees(math.asin(float(np.clip(-z_cam[2], -1.0, 1.0))))
    # the level camera with the same optical axis (geometry.rendering.look_at without roll)
    x0 = np.cross(z_cam, [0.0, 0.0, 1.0])
    if np.linalg.norm(x0) < 1e-9:
        x0 = np.cross(z_cam, [0.0, 1.0, 0.0])
    x0 /= np.linalg.norm(x0)
    y0 = np.cross(z_cam, x0)
    roll = math.degrees(math.atan2(float(x_cam @ y0), float(x_cam @ x0)))
    c = R.T @ (np.asarray(target_center, dtype=np.float64) - eye)
    fov = fov_from_K(K, height)
    r = float(target_radius)
    return {
        "elevation_deg": elevation,
        "distance_factor": float(c[2]) / fit_distance(r, fov, width, height),
        "roll_deg": roll,
        "fov_deg": fov,
        "look_at_offset": (float(c[0]) / r, float(c[1]) / r),
    }
