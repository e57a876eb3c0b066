"""``sensor_msgs/Image`` and ``sensor_msgs/CameraInfo`` <-> numpy, without ROS.

The readers (:func:`image_to_numpy`, :func:`camera_info_to_K`) work on any object that has the message's
fields (``height, width, encoding, is_bigendian, step, data`` / ``k``), so they run and are tested without
rclpy. The writers build real messages and import ``sensor_msgs`` / ``std_msgs`` lazily, inside
:func:`to_image_msg` / :func:`make_camera_info` only.

Encodings (``ENCODINGS`` plus the generic OpenCV-style ``<bits><U|S|F>C<n>`` names, e.g. ``32FC8`` for an
8-dimensional descriptor image)::

    rgb8 bgr8 rgba8 bgra8 mono8 mono16 8UC<n> 8SC<n> 16UC<n> 16SC<n> 32SC<n> 32FC<n> 64FC<n>

Array shapes: one-channel encodings give ``(H, W)``, n-channel encodings ``(H, W, n)`` (``n >= 2``).
Rows may be padded (``step > width * channels * itemsize``); ``is_bigendian`` is honoured on read and can be
chosen on write. Every inconsistency raises a ``ValueError`` naming the encoding and the sizes involved.

cv_bridge: the Python cv_bridge ignored ``step`` for years and breaks under NumPy 2, so this module's own
conversion is the default path. ``backend="auto"`` uses cv_bridge only when it imports *and* passes a
round-trip self-check on padded test images (:func:`cv_bridge_usable`).
"""
from __future__ import annotations

import functools
import re
import sys
from typing import Any

import numpy as np

# encoding -> (numpy dtype, channels). Generic "<bits><U|S|F>C<n>" names are parsed by encoding_info().
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

_GENERIC_ENCODING = re.compile(r"^(8|16|32|64)(U|S|F)C(\d+)$")
_GENERIC_DTYPES = {
    ("8", "U"): np.uint8, ("8", "S"): np.int8,
    ("16", "U"): np.uint16, ("16", "S"): np.int16,
    ("32", "S"): np.int32, ("32", "F"): np.float32,
    ("64", "F"): np.float64,
}
BACKENDS = ("numpy", "cv_bridge", "auto")


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """Return ``(dtype, channels)`` for an image encoding; ``ValueError`` naming it when unknown."""
    if encoding in ENCODINGS:
        return ENCODINGS[encoding]
    match = _GENERIC_ENCODING.match(encoding) if isinstance(encoding, str) else None
    if match is not None:
        bits, kind, channels = match.group(1), match.group(2), int(match.group(3))
        dtype = _GENERIC_DTYPES.get((bits, kind))
        if dtype is not None and channels >= 1:
            return np.dtype(dtype), channels
    raise ValueError(
        f"unknown image encoding {encoding!r}: expected one of {sorted(ENCODINGS)} "
        "or '<8|16|32|64><U|S|F>C<n>' such as '32FC8'")


def descriptor_encoding(channels: int) -> str:
    """The encoding of an n-channel float32 descriptor image, e.g. ``descriptor_encoding(16) == '32FC16'``."""
    if int(channels) < 1:
        raise ValueError(f"descriptor images need at least 1 channel, got {channels}")
    return f"32FC{int(channels)}"


def _data_as_bytes(data: Any) -> np.ndarray:
    """``msg.data`` (array.array('B'), bytes, memoryview, list of ints, ndarray) -> 1-D uint8 view/array."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype != np.uint8 else data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_numpy(msg: Any, backend: str = "numpy") -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` (or any object with its fields) into a native-byte-order array.

    Returns ``(H, W)`` for one-channel encodings and ``(H, W, C)`` otherwise, a fresh writable copy
    (never a view into the message). Channel order is the encoding's (``bgr8`` stays BGR).
    Raises ``ValueError`` naming the encoding and sizes when the message is inconsistent.
    """
    if _use_cv_bridge(backend):
        return _cv_bridge_to_numpy(msg)
    encoding = str(msg.encoding)
    dtype, channels = encoding_info(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 0 or width < 0:
        raise ValueError(f"image ({encoding}) has negative size {width}x{height}")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(
            f"image ({encoding}, {width}x{height}): step {step} is smaller than width * channels * itemsize = "
            f"{width} * {channels} * {dtype.itemsize} = {row_bytes}")
    raw = _data_as_bytes(msg.data)
    if raw.size < height * step:
        raise ValueError(
            f"image ({encoding}, {width}x{height}, step {step}): data has {raw.size} bytes, "
            f"expected at least height * step = {height * step}")
    rows = raw[: height * step].reshape(height, step)[:, :row_bytes]
    byte_order = ">" if bool(msg.is_bigendian) else "<"
    array = np.ascontiguousarray(rows).view(dtype.newbyteorder(byte_order))
    array = array.astype(dtype.newbyteorder("="), copy=True)  # native order, owns its memory
    return array.reshape(height, width) if channels == 1 else array.reshape(height, width, channels)


def _checked_array(array: np.ndarray, encoding: str) -> np.ndarray:
    """Validate shape/dtype against the encoding; return a C-contiguous array of the encoding's dtype."""
    dtype, channels = encoding_info(encoding)
    array = np.asarray(array)
    shape = array.shape
    if channels == 1 and array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    if channels == 1:
        ok = array.ndim == 2
        expected = "(H, W) or (H, W, 1)"
    else:
        ok = array.ndim == 3 and shape[2] == channels
        expected = f"(H, W, {channels})"
    if not ok:
        raise ValueError(f"encoding {encoding!r} expects an array of shape {expected}, got {shape}")
    if array.dtype == dtype:
        return np.ascontiguousarray(array)
    if dtype.kind in "ui":
        if array.dtype.kind not in "uib":
            raise ValueError(
                f"array of dtype {array.dtype} cannot be sent as {encoding!r}: expected integers ({dtype}); "
                "convert (e.g. scale floats in [0, 1] to 0..255) before publishing")
        if array.size:
            info = np.iinfo(dtype)
            lo, hi = int(array.min()), int(array.max())
            if lo < info.min or hi > info.max:
                raise ValueError(
                    f"encoding {encoding!r} holds {dtype} in [{info.min}, {info.max}], array values span [{lo}, {hi}]")
    elif array.dtype.kind not in "fuib":
        raise ValueError(f"array of dtype {array.dtype} cannot be sent as {encoding!r} ({dtype})")
    return np.ascontiguousarray(array.astype(dtype))


def image_fields(array: np.ndarray, encoding: str, is_bigendian: bool | None = None,
                 step: int | None = None) -> dict[str, Any]:
    """The ``sensor_msgs/Image`` fields (except header) for ``array``, as a plain dict (ROS-free).

    ``is_bigendian``: byte order of ``data`` (default: this machine's). ``step``: row length in bytes,
    default ``width * channels * itemsize``; a larger value pads each row with zero bytes.
    ``data`` is a 1-D uint8 array (bytes-like: ``bytes(fields["data"])`` gives the raw bytes), so building a
    message copies the pixels once.
    """
    array = _checked_array(array, encoding)
    dtype, channels = encoding_info(encoding)
    height, width = array.shape[:2]
    row_bytes = width * channels * dtype.itemsize
    step = row_bytes if step is None else int(step)
    if step < row_bytes:
        raise ValueError(
            f"image ({encoding}, {width}x{height}): step {step} is smaller than width * channels * itemsize = "
            f"{row_bytes}")
    big = (sys.byteorder == "big") if is_bigendian is None else bool(is_bigendian)
    ordered = array.astype(dtype.newbyteorder(">" if big else "<"), copy=False)
    rows = np.ascontiguousarray(ordered).view(np.uint8).reshape(height, row_bytes)
    if step > row_bytes:
        padded = np.zeros((height, step), dtype=np.uint8)
        padded[:, :row_bytes] = rows
        rows = padded
    return {"height": int(height), "width": int(width), "encoding": encoding,
            "is_bigendian": int(big), "step": int(step), "data": rows.reshape(-1)}


def to_image_msg(fields: dict[str, Any], header: Any = None):
    """Build a real ``sensor_msgs.msg.Image`` from :func:`image_fields` output (imports sensor_msgs here)."""
    import array as _array

    from sensor_msgs.msg import Image

    msg = Image()
    if header is not None:
        msg.header = header
    msg.height = fields["height"]
    msg.width = fields["width"]
    msg.encoding = fields["encoding"]
    msg.is_bigendian = fields["is_bigendian"]
    msg.step = fields["step"]
    data = _array.array("B")
    data.frombytes(np.ascontiguousarray(fields["data"], dtype=np.uint8))  # one copy, no per-element checks
    msg.data = data  # an array('B') is taken as is by the generated setter
    return msg


def numpy_to_image(array: np.ndarray, encoding: str, header: Any = None, *, is_bigendian: bool | None = None,
                   step: int | None = None, backend: str = "numpy"):
    """Encode ``array`` ((H, W) or (H, W, C) matching ``encoding``) as a ``sensor_msgs.msg.Image``.

    Integer arrays are range-checked for integer encodings (a float array for ``rgb8`` is an error);
    float encodings accept any numeric array (cast to the encoding's dtype). ``header`` is copied in when given.
    """
    if _use_cv_bridge(backend) and is_bigendian is None and step is None:
        msg = _cv_bridge_bridge().cv2_to_imgmsg(_checked_array(array, encoding), encoding=encoding)
        if header is not None:
            msg.header = header
        return msg
    return to_image_msg(image_fields(array, encoding, is_bigendian=is_bigendian, step=step), header)


# --------------------------------------------------------------------------------------------- CameraInfo

def camera_info_to_K(msg: Any, dtype: Any = np.float64) -> np.ndarray:
    """3x3 intrinsics from ``CameraInfo.k`` (row-major 9 values).

    Raises ``ValueError`` when ``k`` has not 9 finite values, when the camera is uncalibrated
    (all zeros, ``fx <= 0`` or ``fy <= 0``) or when the last row is not ``[0, 0, 1]``.
    """
    k = getattr(msg, "k", None)
    if k is None:
        k = getattr(msg, "K", None)  # ROS 1 spelling
    if k is None:
        raise ValueError("camera info has no 'k' field (expected sensor_msgs/CameraInfo)")
    values = np.asarray(k, dtype=np.float64).reshape(-1)
    if values.size != 9:
        raise ValueError(f"camera info 'k' has {values.size} values, expected 9 (row-major 3x3)")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"camera info 'k' has non-finite values: {values.tolist()}")
    K = values.reshape(3, 3)
    if not np.any(values) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"camera is uncalibrated: camera info 'k' has fx={K[0, 0]}, fy={K[1, 1]} (need fx > 0 and fy > 0)")
    if not np.allclose(K[2], [0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError(f"camera info 'k' last row is {K[2].tolist()}, expected [0, 0, 1]")
    return K.astype(dtype)


# plausible intrinsics, relative to the image size (see intrinsics_problem)
FOCAL_RANGE = (0.05, 100.0)          # fx, fy within this many times max(width, height) pixels
PRINCIPAL_POINT_RANGE = (-0.5, 1.5)  # cx within these fractions of the width, cy of the height


def intrinsics_problem(K: Any, width: int, height: int) -> str:
    """Why ``K`` (3, 3) is not a plausible pinhole camera for a ``width`` x ``height`` image; ``""`` when it is.

    Checked before any maths, so absurd values (``fx = 1e-300``, ``cx = -1e308``) never reach a solver or a pose:
    the image size must be positive, ``K`` finite with last row ``[0, 0, 1]``, ``fx`` and ``fy`` within
    ``FOCAL_RANGE`` times ``max(width, height)`` pixels (a few degrees to about 170 degrees of field of view),
    and the principal point near the image: ``cx`` within ``PRINCIPAL_POINT_RANGE`` times the width, ``cy`` within
    it times the height. The reason names the value and the accepted range.
    """
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        return f"image size {width}x{height} is not positive"
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        return f"K has shape {K.shape}, expected (3, 3)"
    if not np.all(np.isfinite(K)):
        return f"K has non-finite values: {K.reshape(-1).tolist()}"
    if not np.allclose(K[2], [0.0, 0.0, 1.0], atol=1e-6):
        return f"K last row is {K[2].tolist()}, expected [0, 0, 1]"
    size = max(width, height)
    lo, hi = FOCAL_RANGE[0] * size, FOCAL_RANGE[1] * size
    for name, f in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if not lo <= f <= hi:
            return (f"focal length {name}={f:g} px is implausible for a {width}x{height} image "
                    f"(accepted {lo:g} .. {hi:g} px)")
    if abs(K[0, 1]) > hi:
        return f"skew K[0,1]={K[0, 1]:g} is implausible (accepted |skew| <= {hi:g})"
    a, b = PRINCIPAL_POINT_RANGE
    for name, c, n in (("cx", K[0, 2], width), ("cy", K[1, 2], height)):
        if not a * n <= c <= b * n:
            return (f"principal point {name}={c:g} px is far outside the {width}x{height} image "
                    f"(accepted {a * n:g} .. {b * n:g} px)")
    return ""


def camera_info_for_image(msg: Any, width: int, height: int, dtype: Any = np.float64) -> np.ndarray:
    """``K`` of a camera_info that belongs to an image of ``width`` x ``height``; ``ValueError`` naming why not.

    Refused: a camera_info of another size than the image (both sizes in the message), anything
    :func:`camera_info_to_K` refuses, and intrinsics :func:`intrinsics_problem` finds implausible.
    """
    if (int(msg.width), int(msg.height)) != (int(width), int(height)):
        raise ValueError(f"camera_info size {msg.width}x{msg.height} differs from the image size {width}x{height}")
    K = camera_info_to_K(msg)
    problem = intrinsics_problem(K, width, height)
    if problem:
        raise ValueError(f"implausible camera intrinsics: {problem}")
    return K.astype(dtype)


def make_camera_info(K: np.ndarray, width: int, height: int, header: Any = None,
                     distortion_model: str = "plumb_bob", d: Any = None):
    """A ``sensor_msgs.msg.CameraInfo`` for an undistorted pinhole camera with intrinsics ``K`` (3, 3).

    ``p = [K | 0]``, ``r = I``, ``d`` defaults to five zeros (plumb_bob). Imports sensor_msgs here.
    """
    from sensor_msgs.msg import CameraInfo

    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3), got {K.shape}")
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be finite with fx > 0 and fy > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"camera info size must be positive, got {width}x{height}")
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = distortion_model
    msg.d = [0.0] * 5 if d is None else [float(x) for x in d]
    msg.k = K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()
    return msg


# ---------------------------------------------------------------------------------------------- cv_bridge

def _use_cv_bridge(backend: str) -> bool:
    """Whether to convert with cv_bridge: never for 'numpy', when usable for 'auto', always for 'cv_bridge'."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return False
    usable = cv_bridge_usable()
    if backend == "cv_bridge" and not usable:
        raise ValueError("backend='cv_bridge' requested but cv_bridge does not import or fails its round-trip check")
    return usable


@functools.lru_cache(maxsize=1)
def _cv_bridge_bridge():
    from cv_bridge import CvBridge  # noqa: PLC0415 (optional dependency)

    return CvBridge()


@functools.lru_cache(maxsize=1)
def cv_bridge_usable() -> bool:
    """True when cv_bridge imports and round-trips a padded 32FC3 and an rgb8 image exactly (cached)."""
    try:
        bridge = _cv_bridge_bridge()
        rng = np.random.default_rng(0)
        for array, encoding in ((rng.random((5, 7, 3), dtype=np.float32), "32FC3"),
                                (rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), "rgb8")):
            msg = to_image_msg(image_fields(array, encoding, step=array.shape[1] * array.strides[1] + 8))
            back = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
            if back.shape != array.shape or not np.array_equal(back, array):
                return False
            again = bridge.cv2_to_imgmsg(array, encoding=encoding)
            if not np.array_equal(image_to_numpy(again), array):
                return False
        return True
    except Exception:  # noqa: BLE001 - any failure (ImportError, NumPy 2 AttributeError...) means "not usable"
        return False


def _cv_bridge_to_numpy(msg: Any) -> np.ndarray:
    encoding_info(str(msg.encoding))  # same error text for unknown encodings
    array = np.array(_cv_bridge_bridge().imgmsg_to_cv2(msg, desired_encoding="passthrough"), copy=True)
    return array


# ----------------------------------------------------------------------------------------------- camera frame sets
CAMERA_COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
CAMERA_DEPTH_ENCODINGS = ("16UC1", "32FC1")


class FrameSetError(ValueError):
    """A colour + depth + camera_info set a node must drop; ``key`` names the kind of problem (for throttled logs)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def color_to_rgb(array: np.ndarray, encoding: str) -> np.ndarray:
    """``(H, W, 3|4)`` colour image of ``encoding`` -> ``(H, W, 3)`` RGB (BGR swapped, alpha dropped)."""
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(array[:, :, 2::-1])
    return np.ascontiguousarray(array[:, :, :3])


def decode_camera_set(color_msg: Any, depth_msg: Any, info_msg: Any, depth_scale: float | None = None,
                      check_intrinsics: bool = False):
    """One synchronised camera set -> ``(rgb (H, W, 3) uint8, depth (H, W) float32 metres, 0 = none, K (3, 3))``.

    The checks every camera-reading node makes, in order: colour encoding in :data:`CAMERA_COLOR_ENCODINGS`, depth
    encoding in :data:`CAMERA_DEPTH_ENCODINGS`, colour and depth of one size (depth registered to colour),
    camera_info of that size (or 0 x 0: some drivers leave it unset), then decoding (``geometry.camera.decode_depth``
    with ``depth_scale`` for 16UC1). With ``check_intrinsics`` K must also be plausible for the image
    (:func:`intrinsics_problem`). Raises :class:`FrameSetError` (``key``: ``color_encoding``, ``depth_encoding``,
    ``size_mismatch``, ``info_size`` or ``decode``) with a message naming the problem.
    """
    from dense_descriptor_grasp.geometry.camera import decode_depth

    if color_msg.encoding not in CAMERA_COLOR_ENCODINGS:
        raise FrameSetError("color_encoding", f"colour encoding {color_msg.encoding!r} is not one of "
                                              f"{list(CAMERA_COLOR_ENCODINGS)}")
    if depth_msg.encoding not in CAMERA_DEPTH_ENCODINGS:
        raise FrameSetError("depth_encoding", f"depth encoding {depth_msg.encoding!r} is not one of "
                                              f"{list(CAMERA_DEPTH_ENCODINGS)}")
    w, h = color_msg.width, color_msg.height
    if (w, h) != (depth_msg.width, depth_msg.height):
        raise FrameSetError("size_mismatch", "colour and depth sizes differ; depth must be registered (aligned) to "
                                             "the colour camera")
    if (info_msg.width, info_msg.height) not in ((0, 0), (w, h)):
        raise FrameSetError("info_size", "camera_info size differs from the colour image")
    try:
        K = camera_info_to_K(info_msg)
        if check_intrinsics:
            problem = intrinsics_problem(K, w, h)
            if problem:
                raise ValueError(f"implausible camera intrinsics: {problem}")
        rgb = color_to_rgb(image_to_numpy(color_msg), color_msg.encoding)
        depth = decode_depth(image_to_numpy(depth_msg), depth_msg.encoding, depth_scale)
    except ValueError as exc:
        raise FrameSetError("decode", str(exc)) from exc
    return rgb, depth, K
