"""A simulated capture: the pybullet renderer orbits a camera around one object on a textured table.

For tests and benchmarks of the capture pipeline without a camera. One object (default: the duck) stands
upright at the world origin on a 2 m square support plane at z = 0 with a smooth multi-scale colour texture (RGB-D
odometry needs texture); a camera circles it looking at its centre, on a helix whose elevation goes from
``elevation_deg[0]`` up to ``elevation_deg[1]`` and back over the orbit (the last view is one step before the first:
the loop closes), with small random jitter of the look-at point, distance and roll (a hand-held camera). Each
view gets the sensor noise of :mod:`.noise` (D435-like by default).

Truth per view: ``T_world_camera`` in the frame itself, and in :class:`SimulatedCapture` the true (noise-free)
depth and the true object mask; ``T_world_object`` and the object's name for the whole capture.

``simulate_capture --out FOLDER`` writes a capture folder in the layout of :mod:`.importer` (what a camera tool
exports: colour, 16-bit millimetre depth, ``camera_intrinsic.json``; ``poses.json`` only with ``--with-poses``)
plus the truth under ``FOLDER/truth/`` (:func:`write_simulated_capture`, :func:`read_simulated_truth`).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .frames import Frame
from .importer import write_capture_folder
from .noise import NoiseConfig, apply_rgbd_noise

__all__ = ["OrbitConfig", "SimulatedCapture", "simulate_capture", "orbit_poses", "floor_texture",
           "write_simulated_capture", "read_simulated_truth", "main"]


@dataclass(frozen=True)
class OrbitConfig:
    """The camera path and image size (angles in degrees, lengths in metres).

    Consecutive views are ``arc_deg / views`` apart in azimuth (36 views over 360 deg: 10 deg, ~4 cm of camera
    motion at 0.3 m and 40 deg elevation).
    """

    views: int = 36
    arc_deg: float = 360.0                  # azimuth covered; 360 = a closed loop
    elevation_deg: tuple = (30.0, 50.0)     # helix: lo at the start and the end, hi half-way
    distance_m: float = 0.3                 # camera to the object's centre (a D435 sees from ~0.2 m)
    fov_deg: float = 50.0                   # vertical field of view (fx = fy = (H / 2) / tan(fov / 2))
    width: int = 320
    height: int = 240
    look_at_jitter_m: float = 0.005         # +- per axis
    distance_jitter_m: float = 0.01         # +-
    roll_jitter_deg: float = 2.0            # +-
    start_azimuth_deg: float | None = None  # None: random

    def __post_init__(self):
        lo, hi = (float(v) for v in self.elevation_deg)
        object.__setattr__(self, "elevation_deg", (lo, hi))
        if self.views < 1 or not (0.0 < self.arc_deg <= 360.0):
            raise ValueError(f"OrbitConfig: need views >= 1 and 0 < arc_deg <= 360, got {self.views}, "
                             f"{self.arc_deg}")
        if not (0.0 < lo <= hi < 90.0):
            raise ValueError(f"OrbitConfig: elevation_deg must satisfy 0 < lo <= hi < 90, got {self.elevation_deg}")
        if self.distance_m <= 0 or self.width < 8 or self.height < 8 or not (0 < self.fov_deg < 180):
            raise ValueError(f"OrbitConfig: need distance_m > 0, width and height >= 8 and 0 < fov_deg < 180, got "
                             f"{self.distance_m}, {self.width}x{self.height}, {self.fov_deg}")
        if min(self.look_at_jitter_m, self.distance_jitter_m, self.roll_jitter_deg) < 0:
            raise ValueError("OrbitConfig: jitters must be >= 0")
        if self.distance_jitter_m >= self.distance_m:
            raise ValueError("OrbitConfig: distance_jitter_m must be smaller than distance_m")


@dataclass
class SimulatedCapture:
    """A simulated capture and its truth.

    Attributes:
        frames: ``[Frame]`` with the noisy images, ``T_world_camera`` = the true pose, ``mask`` = ``None`` (the
            pipeline has to find it) and ``info`` = ``{"view", "azimuth_deg", "elevation_deg", "object"}``.
        true_depths: ``[(H, W) float32]`` noise-free depth in metres (0 = nothing hit).
        true_masks: ``[(H, W) bool]`` the object's pixels.
        T_world_object: (4, 4) the object's base-link pose (world z up, support plane z = 0).
        object_name: the object's name.
        center: (3,) centre of the object's bounding box in the world (what the cameras look at).
        radius: bounding-sphere radius of the object's visual vertices (metres).
        settings: JSON-safe record of the orbit, noise and seed.
    """

    frames: list
    true_depths: list
    true_masks: list
    T_world_object: np.ndarray
    object_name: str
    center: np.ndarray
    radius: float
    settings: dict = field(default_factory=dict)


def floor_texture(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """``(size, size, 3)`` uint8 smooth multi-scale colour noise (periods 8-256 texels, no per-texel noise, so
    views a few degrees apart see the same pattern): the support plane's texture."""
    import cv2

    field_ = np.zeros((size, size), np.float32)
    for cell, weight in ((256, 1.0), (128, 0.8), (64, 0.6), (32, 0.5), (16, 0.4), (8, 0.3)):
        n = max(2, size // cell)
        coarse = rng.standard_normal((n + 1, n + 1)).astype(np.float32)
        up = cv2.resize(coarse, (size + cell, size + cell), interpolation=cv2.INTER_CUBIC)[:size, :size]
        field_ += weight * up
    field_ = (field_ - field_.min()) / max(float(np.ptp(field_)), 1e-6)
    c0, c1 = rng.uniform(40, 120, size=3), rng.uniform(140, 240, size=3)
    img = c0[None, None, :] + field_[..., None] * (c1 - c0)[None, None, :]
    return np.clip(img, 0, 255).astype(np.uint8)


def orbit_poses(rng: np.random.Generator, center, orbit: OrbitConfig):
    """``([T_world_camera (4, 4)], [(azimuth_deg, elevation_deg)])`` of the orbit around ``center`` (3,)."""
    from dense_descriptor_grasp.geometry.rendering import look_at

    center = np.asarray(center, dtype=np.float64)
    az0 = float(rng.uniform(0.0, 360.0)) if orbit.start_azimuth_deg is None else float(orbit.start_azimuth_deg)
    lo, hi = orbit.elevation_deg
    poses, angles = [], []
    for i in range(orbit.views):
        t = i / orbit.views
        az = az0 + orbit.arc_deg * t
        el = lo + (hi - lo) * 0.5 * (1.0 - math.cos(2.0 * math.pi * t))
        dist = orbit.distance_m + rng.uniform(-orbit.distance_jitter_m, orbit.distance_jitter_m)
        target = center + rng.uniform(-orbit.look_at_jitter_m, orbit.look_at_jitter_m, size=3)
        roll = math.radians(rng.uniform(-orbit.roll_jitter_deg, orbit.roll_jitter_deg))
        a, e = math.radians(az), math.radians(el)
        eye = target + dist * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        poses.append(look_at(eye, target, roll=roll))
        angles.append((az % 360.0, el))
    return poses, angles


def simulate_capture(object_name: str = "duck", orbit: OrbitConfig = OrbitConfig(),
                     noise: NoiseConfig | None = NoiseConfig(), seed: int = 0) -> SimulatedCapture:
    """Render an orbit around one object on a textured table and add sensor noise.

    Args:
        object_name: a registry name (``objects.OBJECT_LIBRARY``: duck, teddy, lego, mug, ...) or a .urdf / .obj path.
        orbit: the camera path and image size.
        noise: the sensor model; ``None`` or :meth:`NoiseConfig.none` = the clean renders.
        seed: everything random (light, texture, start azimuth, jitter, noise) follows from it.
    Returns:
        :class:`SimulatedCapture` (frames named ``000000``, ``000001``, ...; stamps 0.1 s apart).
    """
    from dense_descriptor_grasp.data.render import RenderConfig, SceneRenderer, sample_scene
    from dense_descriptor_grasp.objects import resolve_object

    spec = resolve_object(object_name)
    cfg = RenderConfig(width=orbit.width, height=orbit.height, fov_deg=orbit.fov_deg, plane_size=2.0,
                       texture_size=64, backgrounds=("noise",), position_range=0.0)
    scene_rng = np.random.default_rng([seed, 0])
    scene = sample_scene(scene_rng, [spec], cfg)
    scene = replace(scene, plane_texture=floor_texture(scene_rng, 1024))
    poses, angles = orbit_poses(np.random.default_rng([seed, 1]), scene.center, orbit)
    noise = NoiseConfig.none() if noise is None else noise
    frames, depths, masks = [], [], []
    T_world_object = None
    with SceneRenderer(cfg) as renderer:
        renderer.set_scene(scene)
        for i, (T, (az, el)) in enumerate(zip(poses, angles)):
            view = renderer.render(T)
            true_mask = view.mask == scene.objects[0].mask_value
            rgb, depth = apply_rgbd_noise(view.rgb, view.depth, np.random.default_rng([seed, 2, i]), noise, K=view.K)
            frames.append(Frame(rgb=rgb, depth=depth, K=view.K, name=f"{i:06d}", T_world_camera=view.T_world_camera,
                                stamp=0.1 * i, info={"view": i, "azimuth_deg": round(az, 6),
                                                     "elevation_deg": round(el, 6), "object": spec.name}))
            depths.append(view.depth.astype(np.float32))
            masks.append(true_mask)
            T_world_object = view.object_poses[0][2]
    settings = {"object": spec.name, "seed": int(seed), "orbit": {k: list(v) if isinstance(v, tuple) else v
                                                                 for k, v in asdict(orbit).items()},
                "noise": noise.as_dict()}
    return SimulatedCapture(frames, depths, masks, np.asarray(T_world_object, dtype=np.float64), spec.name,
                            np.asarray(scene.center, dtype=np.float64), float(scene.radius), settings)


def write_simulated_capture(capture: SimulatedCapture, folder: str, with_poses: bool = False,
                            depth_scale: float = 0.001) -> str:
    """Write the capture as a camera tool would (:func:`.importer.write_capture_folder`; true poses in
    ``poses.json`` only when ``with_poses``) and its truth under ``folder/truth/``: ``mask/<name>.png`` (0/255),
    ``depth/<name>.png`` (uint16, 0.1 mm units) and ``truth.json`` (object, ``T_world_object``, ``T_world_camera``
    per frame, centre, radius, settings). Every file atomically; the truth first."""
    from dense_descriptor_grasp.data.dataset_format import atomic_write_json, encode_depth, write_png

    truth = os.path.join(folder, "truth")
    for f, d, m in zip(capture.frames, capture.true_depths, capture.true_masks):
        write_png(os.path.join(truth, "mask", f.name + ".png"), m.astype(np.uint8) * 255)
        write_png(os.path.join(truth, "depth", f.name + ".png"), encode_depth(d, 1e-4))
    atomic_write_json(os.path.join(truth, "truth.json"), {
        "object": capture.object_name, "T_world_object": capture.T_world_object.tolist(),
        "T_world_camera": {f.name: f.T_world_camera.tolist() for f in capture.frames},
        "center": capture.center.tolist(), "radius": capture.radius, "depth_scale": 1e-4,
        "settings": capture.settings})
    frames = capture.frames if with_poses else [replace(f, T_world_camera=None) for f in capture.frames]
    return write_capture_folder(frames, folder, depth_scale=depth_scale, write_poses=with_poses)


def read_simulated_truth(folder: str) -> dict:
    """The truth :func:`write_simulated_capture` wrote: ``truth.json``'s keys plus ``masks`` and ``depths``
    (``{name: (H, W) bool / float32 metres}``) and ``T_world_camera`` as ``{name: (4, 4)}`` arrays."""
    import cv2

    from dense_descriptor_grasp.data.dataset_format import read_json

    truth = os.path.join(folder, "truth")
    path = os.path.join(truth, "truth.json")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no simulated truth here (written by simulate_capture)")
    data = read_json(path)
    data["T_world_object"] = np.asarray(data["T_world_object"], dtype=np.float64)
    data["T_world_camera"] = {k: np.asarray(v, dtype=np.float64) for k, v in data["T_world_camera"].items()}
    data["masks"], data["depths"] = {}, {}
    for name in data["T_world_camera"]:
        m = cv2.imread(os.path.join(truth, "mask", name + ".png"), cv2.IMREAD_UNCHANGED)
        d = cv2.imread(os.path.join(truth, "depth", name + ".png"), cv2.IMREAD_UNCHANGED)
        if m is None or d is None:
            raise ValueError(f"{truth}: truth images of frame {name} are missing")
        data["masks"][name] = m > 0
        data["depths"][name] = d.astype(np.float32) * np.float32(data["depth_scale"])
    return data


def get_args_parser() -> argparse.ArgumentParser:
    d = OrbitConfig()
    ap = argparse.ArgumentParser(prog="simulate_capture", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="capture folder to write (colour, depth, intrinsics, truth/)")
    ap.add_argument("--object", default="duck", help="library name (duck, teddy, lego, mug, ...) or .urdf/.obj")
    ap.add_argument("--views", type=int, default=d.views, help="views on the orbit")
    ap.add_argument("--arc", type=float, default=d.arc_deg, help="azimuth covered by the orbit (degrees)")
    ap.add_argument("--elevation", type=float, nargs=2, default=list(d.elevation_deg), metavar=("LO", "HI"),
                    help="helix elevation: LO at the start and end, HI half-way (degrees)")
    ap.add_argument("--distance", type=float, default=d.distance_m, help="camera distance to the object (m)")
    ap.add_argument("--fov", type=float, default=d.fov_deg, help="vertical field of view (degrees)")
    ap.add_argument("--width", type=int, default=d.width)
    ap.add_argument("--height", type=int, default=d.height)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", choices=("default", "none"), default="default",
                    help="sensor noise: the D435-like model of capture/noise.py, or none")
    ap.add_argument("--with-poses", action="store_true",
                    help="also write the true camera poses to poses.json (as if they came from TF)")
    return ap


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        orbit = OrbitConfig(views=args.views, arc_deg=args.arc, elevation_deg=tuple(args.elevation),
                            distance_m=args.distance, fov_deg=args.fov, width=args.width, height=args.height)
        t0 = time.perf_counter()
        capture = simulate_capture(args.object, orbit, NoiseConfig() if args.noise == "default" else None,
                                   seed=args.seed)
        write_simulated_capture(capture, args.out, with_poses=args.with_poses)
    except ValueError as exc:
        print(f"simulate_capture: error: {exc}", file=sys.stderr)
        return 2
    print(f"simulate_capture: {len(capture.frames)} views of {capture.object_name} "
          f"({args.width}x{args.height}, noise {args.noise}) in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
