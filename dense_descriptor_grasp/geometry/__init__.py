"""ROS-free geometry core: pinhole camera, SE(3), rigid fits. numpy or torch in, the same out."""
from .camera import backproject, backproject_depth_image, check_intrinsics, decode_depth, pixel_grid, project, valid_depth
from .rigid_fit import DegeneratePointsError, fit_residual, kabsch
from .se3 import (
    hat,
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
