"""The one in-memory RGB-D view of the capture pipeline (ROS-free, numpy only).

Conventions are those of docs/ARCHITECTURE.md: metres, pixel centres at integer ``(u, v)`` = (column, row),
depth along the optical axis, ``T_world_camera`` in the optical convention (x right, y down, z forward) mapping
camera-frame points into the world frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

__all__ = ["Frame"]


@dataclass
class Frame:
    """One registered RGB-D view.

    Attributes:
        rgb: (H, W, 3) uint8 colour image.
        depth: (H, W) float32 depth in metres along the optical axis; 0 = no depth (never NaN: use
            :meth:`from_arrays` to clean a raw image).
        K: (3, 3) float64 intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` of both images (depth registered to
            colour).
        name: view id used for files and error messages (e.g. ``"000012"``).
        T_world_camera: (4, 4) float64 camera pose when known (from TF, the simulator's truth or the pose
            estimation), else ``None``.
        stamp: capture time in seconds (0.0 when unknown).
        mask: (H, W) bool object mask when known, else ``None``.
        info: free-form, JSON-safe extras (e.g. the simulator's truth for tests).
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    name: str = "000000"
    T_world_camera: Optional[np.ndarray] = None
    stamp: float = 0.0
    mask: Optional[np.ndarray] = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        rgb, depth = np.asarray(self.rgb), np.asarray(self.depth)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"frame {self.name}: rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"frame {self.name}: depth {depth.shape} and rgb {rgb.shape[:2]} differ in size "
                             "(depth must be registered to the colour image)")
        depth = depth.astype(np.float32, copy=False)
        if not np.all(np.isfinite(depth)) or np.any(depth < 0):
            raise ValueError(f"frame {self.name}: depth must be finite and >= 0 metres (0 = no depth); "
                             "clean it with Frame.from_arrays")
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"frame {self.name}: K must be a finite 3x3 matrix with fx, fy > 0, got {K.tolist()}")
        if self.T_world_camera is not None:
            T = np.asarray(self.T_world_camera, dtype=np.float64)
            if T.shape != (4, 4) or not np.all(np.isfinite(T)):
                raise ValueError(f"frame {self.name}: T_world_camera must be a finite 4x4 matrix")
            self.T_world_camera = T
        if self.mask is not None:
            mask = np.asarray(self.mask).astype(bool)
            if mask.shape != depth.shape:
                raise ValueError(f"frame {self.name}: mask {mask.shape} and depth {depth.shape} differ in size")
            self.mask = mask
        self.rgb, self.depth, self.K = rgb, depth, K

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])

    @classmethod
    def from_arrays(cls, rgb, depth, K, **kwargs) -> "Frame":
        """A frame from raw arrays: depth non-finite or <= 0 becomes 0 (no depth); uint16 depth is not accepted
        here (convert with its depth scale first, e.g. ``geometry.camera.decode_depth``)."""
        depth = np.asarray(depth)
        if depth.dtype == np.uint16:
            raise ValueError(f"frame {kwargs.get('name', '?')}: depth is uint16; convert it to metres first "
                             "(value * depth_scale)")
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
        return cls(rgb=np.asarray(rgb, dtype=np.uint8), depth=depth, K=K, **kwargs)
