"""ROS-free camera sources of the sim camera node (``nodes/sim_camera_node.py`` is their ROS shell): a pybullet
scene seen by one fixed camera (:class:`SimCamera`) and the replay of a dataset folder (:class:`DatasetReplay`).

Both have ``new_pose()`` (the next view: ``rgb (H, W, 3)`` uint8, ``depth (H, W)`` float32 metres with 0 = no
depth, ``K (3, 3)``, ``T_world_camera``, ``object_poses`` ``[(name, mask value, T_world_object)]``), ``view`` (the
last one), ``T_camera_object(index)`` (ground truth of an object in the camera optical frame) and ``close()``.
"""
from __future__ import annotations

import math

import numpy as np

from dense_descriptor_grasp.geometry.rendering import look_at

__all__ = ["SimCamera", "DatasetReplay"]


class SimCamera:
    """ROS-free part: a pybullet scene with one camera; ``new_pose()`` re-places the object and renders."""

    def __init__(self, objects, width, height, fov_deg=50.0, seed=0, backgrounds=("plain",),
                 elevation_deg=55.0, distance_factor=1.0, position_range=0.03):
        from dense_descriptor_grasp.data.render import RenderConfig, SceneRenderer
        from dense_descriptor_grasp.objects import resolve_object

        self.config = RenderConfig(width=int(width), height=int(height), fov_deg=float(fov_deg),
                                   backgrounds=tuple(backgrounds), position_range=float(position_range),
                                   texture_size=128)
        self.specs = [resolve_object(o) for o in objects]
        self.rng = np.random.default_rng(seed)
        self.renderer = SceneRenderer(self.config)
        self.vertex_cache = {}
        self.elevation = math.radians(elevation_deg)
        self.distance_factor = float(distance_factor)
        self.T_world_camera = None
        self.view = None

    def new_pose(self):
        """New random object pose, rendered: returns the RenderedView (rgb, depth, K, object poses)."""
        from dense_descriptor_grasp.data.render import sample_scene

        scene = sample_scene(self.rng, self.specs, self.config, self.vertex_cache)
        if self.T_world_camera is None:  # fixed camera chosen from the first scene, framing the whole play area
            cfg = self.config
            half_fov = math.radians(cfg.fov_deg) / 2.0
            half_fov_x = math.atan(math.tan(half_fov) * cfg.width / cfg.height)
            radius = scene.radius + cfg.position_range
            distance = radius / math.sin(min(half_fov, half_fov_x)) * self.distance_factor
            target = np.array([0.0, 0.0, 0.5 * scene.radius])
            direction = np.array([math.cos(self.elevation) * 0.6, math.cos(self.elevation) * 0.8,
                                  math.sin(self.elevation)])
            self.T_world_camera = look_at(target + distance * direction, target)
        self.renderer.set_scene(scene)
        self.view = self.renderer.render(self.T_world_camera)
        return self.view

    def T_camera_object(self, index: int = 0) -> np.ndarray:
        _, _, T_world_object = self.view.object_poses[index]
        return np.linalg.inv(self.T_world_camera) @ T_world_object

    def close(self):
        self.renderer.close()


class DatasetReplay:
    """ROS-free part of the replay mode: cycles through the views of a dataset folder (docs/DATA.md)."""

    def __init__(self, root: str):
        from types import SimpleNamespace

        from dense_descriptor_grasp.data.dataset import RGBDDataset

        self.dataset = RGBDDataset(root, validate=False)
        self.index = -1
        self._ns = SimpleNamespace
        self.view = None

    def new_pose(self):
        self.index = (self.index + 1) % len(self.dataset)
        s = self.dataset.load_numpy(self.index)
        rec = self.dataset.records[self.index]
        objects = [(o.get("name", ""), o.get("mask_value", 0), np.asarray(o["T_world_object"], dtype=np.float64))
                   for o in (rec.objects or []) if isinstance(o, dict) and "T_world_object" in o]
        self.view = self._ns(rgb=s["rgb"], depth=s["depth"], K=np.asarray(s["K"], dtype=np.float64),
                             mask=s["mask"], object_poses=objects,
                             T_world_camera=np.asarray(s["T_world_camera"], dtype=np.float64))
        return self.view

    def T_camera_object(self, index: int = 0):
        if len(self.view.object_poses) <= index:
            return None
        return np.linalg.inv(self.view.T_world_camera) @ self.view.object_poses[index][2]

    def close(self):
        pass
