"""ROS-free geometry core: pinhole camera, SE(3), rigid fits. numpy or torch in, the same out.

The names below are imported on first use (PEP 562), so that the numpy-only ``geometry.rendering`` (intrinsics
from a field of view, look-at poses, pybullet's OpenGL conventions) can be imported by the torch-free data
generator without loading torch.
"""
import importlib

_EXPORTS = {
    "camera": ("backproject", "backproject_depth_image", "check_intrinsics", "decode_depth", "pixel_grid", "project",
               "resize_depth_nearest", "scale_intrinsics", "surface_normals", "valid_depth"),
    "rigid_fit": ("DegeneratePointsError", "fit_residual", "kabsch"),
    "se3": ("hat", "make_se3", "matrix_from_quaternion", "quaternion_from_matrix", "rotation_angle", "se3_apply",
            "se3_compose", "se3_exp", "se3_inverse", "se3_log", "so3_exp", "so3_log"),
    "rendering": ("intrinsics_from_fov", "look_at"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
