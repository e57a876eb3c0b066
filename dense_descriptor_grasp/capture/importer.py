"""A folder of RGB-D frames as camera tools export them <-> :class:`~.frames.Frame` s (ROS-free).

The layout is that of Open3D's RealSense recorder (``examples/python/reconstruction_system/sensors/
realsense_recorder.py --record_imgs``), which its reconstruction system and many other tools read::

    folder/
      camera_intrinsic.json   Open3D PinholeCameraIntrinsic JSON: {"width", "height", "intrinsic_matrix": 9 values,
                              column-major: [fx, 0, 0, 0, fy, 0, cx, cy, 1]} (``intrinsic.json`` is accepted too)
      color/000000.jpg        colour, 8-bit, .jpg / .jpeg / .png (the folder may be called ``rgb/`` instead)
      depth/000000.png        16-bit single-channel depth registered to colour; metres = value * depth_scale
      capture.json            optional: {"depth_scale": metres per unit, "stamps": {name: seconds}}
      poses.json              optional: {"T_world_camera": {name: 4x4 rows}} (camera-to-world, optical frame)
      trajectory.log          optional, when there is no poses.json: Open3D's trajectory .log (blocks of a
                              "i i n" line + 4x4 camera-to-world rows, in frame order)
      mask/000000.png         optional: 8- or 16-bit, non-zero = object

Frames pair colour and depth by file name (without extension), in sorted order; the names become
:attr:`Frame.name`. The depth scale: the ``depth_scale`` argument, else ``capture.json``'s ``depth_scale``
(**metres per unit**, as in this package's dataset format), else Open3D's reconstruction ``config.json``
``depth_scale`` (**units per metre**, Open3D's convention: 1000 = millimetres), else 0.001 (millimetres: the
RealSense default and ROS ``16UC1``). Every error is a ``ValueError`` naming the file.

:func:`write_capture_folder` writes this layout (PNG colour, ``camera_intrinsic.json``, ``capture.json`` last),
every file atomically, through the per-frame :func:`write_frame_images` and :func:`write_capture_metadata` that
:class:`.keyframes.CaptureFolderWriter` (frames appended one at a time, resumable) uses too.
"""
from __future__ import annotations

import os

import numpy as np

from dense_descriptor_grasp.data.dataset_format import atomic_write_json, encode_depth, read_json, write_png

from .frames import Frame

__all__ = ["read_capture_folder", "write_capture_folder", "write_frame_images", "write_capture_metadata",
           "read_open3d_intrinsic", "open3d_intrinsic_dict", "read_trajectory_log", "DEFAULT_CAPTURE_DEPTH_SCALE",
           "COLOR_DIRS", "INTRINSIC_FILES"]

DEFAULT_CAPTURE_DEPTH_SCALE = 0.001          # metres per unit: millimetres (RealSense default, ROS 16UC1)
COLOR_DIRS = ("color", "rgb")
INTRINSIC_FILES = ("camera_intrinsic.json", "intrinsic.json")
COLOR_EXTENSIONS = (".jpg", ".jpeg", ".png")


def read_open3d_intrinsic(path: str):
    """``(K (3, 3) float64, width, height)`` from an Open3D PinholeCameraIntrinsic JSON file.

    ``intrinsic_matrix`` holds 9 numbers in column-major order (Eigen's): ``[fx, 0, 0, 0, fy, 0, cx, cy, 1]``.
    """
    data = read_json(path)
    if not isinstance(data, dict) or not {"width", "height", "intrinsic_matrix"} <= set(data):
        raise ValueError(f"{path}: not an Open3D camera intrinsic (need keys width, height, intrinsic_matrix)")
    m = data["intrinsic_matrix"]
    try:
        m = np.asarray(m, dtype=np.float64)
        w, h = int(data["width"]), int(data["height"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: width, height and intrinsic_matrix must be numbers ({exc})") from exc
    if m.shape != (9,):
        raise ValueError(f"{path}: intrinsic_matrix must be a flat list of 9 numbers (column-major 3x3), "
                         f"got shape {m.shape}")
    K = m.reshape(3, 3, order="F")
    if (not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0 or w <= 0 or h <= 0
            or not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0 or K[0, 1] != 0):
        raise ValueError(f"{path}: not a pinhole intrinsic matrix with fx, fy > 0 and a positive size "
                         f"(row-major reading {K.tolist()}, {w}x{h}); intrinsic_matrix is column-major: "
                         "[fx, 0, 0, 0, fy, 0, cx, cy, 1]")
    return K, w, h


def open3d_intrinsic_dict(K: np.ndarray, width: int, height: int) -> dict:
    """The Open3D PinholeCameraIntrinsic JSON object of ``K (3, 3)`` (column-major ``intrinsic_matrix``)."""
    K = np.asarray(K, dtype=np.float64)
    return {"width": int(width), "height": int(height),
            "intrinsic_matrix": [float(v) for v in K.flatten(order="F")]}


def read_trajectory_log(path: str) -> list:
    """Camera-to-world poses ``[(4, 4) float64]`` from an Open3D / Redwood trajectory ``.log`` file: per frame a
    metadata line of three integers and four rows of a 4x4 matrix."""
    with open(path, "r") as f:
        lines = [ln.split() for ln in f if ln.strip()]
    if len(lines) % 5:
        raise ValueError(f"{path}: a trajectory .log holds blocks of 5 lines (3 integers, 4 matrix rows); "
                         f"got {len(lines)} non-empty lines")
    poses = []
    for b in range(0, len(lines), 5):
        try:
            T = np.array([[float(x) for x in row] for row in lines[b + 1:b + 5]])
        except ValueError as exc:
            raise ValueError(f"{path}: block {b // 5} (line {b + 2}): not numbers ({exc})") from exc
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"{path}: block {b // 5} (line {b + 2}) is not a finite 4x4 matrix")
        poses.append(T)
    return poses


def _list_images(folder: str, extensions) -> dict:
    """``{stem: filename}`` of the images in ``folder``; a stem present twice is an error."""
    out = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in extensions or name.startswith("."):
            continue
        if stem in out:
            raise ValueError(f"{folder}: two images named {stem!r} ({out[stem]}, {name})")
        out[stem] = name
    return out


def _find_color_dir(folder: str) -> str:
    for name in COLOR_DIRS:
        if os.path.isdir(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise ValueError(f"{folder}: no colour folder (expected one of {', '.join(d + '/' for d in COLOR_DIRS)})")


def _find_intrinsic(folder: str) -> str:
    for name in INTRINSIC_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise ValueError(f"{folder}: no intrinsics (expected {' or '.join(INTRINSIC_FILES)} in Open3D's "
                     "PinholeCameraIntrinsic JSON format: width, height, intrinsic_matrix)")


def _positive(value, source: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: depth_scale must be a number, got {value!r}") from exc
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{source}: depth_scale must be a positive number, got {value}")
    return value


def _depth_scale(folder: str, depth_scale) -> float:
    """Metres per depth unit: the argument, capture.json (metres per unit), Open3D's config.json (units per
    metre) or the default 0.001."""
    if depth_scale is not None:
        return _positive(depth_scale, "read_capture_folder")
    capture = os.path.join(folder, "capture.json")
    if os.path.isfile(capture) and "depth_scale" in read_json(capture):
        value = _positive(read_json(capture)["depth_scale"], capture)
        if value > 1.0:
            raise ValueError(f"{capture}: depth_scale is metres per depth unit (0.001 = millimetres), got {value}; "
                             "Open3D's units-per-metre number (1000) belongs in its config.json")
        return value
    config = os.path.join(folder, "config.json")
    if os.path.isfile(config):
        data = read_json(config)
        if isinstance(data, dict) and "depth_scale" in data:
            return 1.0 / _positive(data["depth_scale"], config + " (Open3D: depth units per metre)")
    return DEFAULT_CAPTURE_DEPTH_SCALE


def _read_poses(folder: str, names: list):
    """``{name: (4, 4)}`` from poses.json or trajectory.log, or ``{}`` when neither exists."""
    path = os.path.join(folder, "poses.json")
    if os.path.isfile(path):
        data = read_json(path)
        table = data.get("T_world_camera") if isinstance(data, dict) else None
        if not isinstance(table, dict):
            raise ValueError(f"{path}: expected {{\"T_world_camera\": {{frame name: 4x4 matrix}}}}")
        poses = {}
        for name, T in table.items():
            try:
                T = np.asarray(T, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: T_world_camera of {name!r} is not numeric ({exc})") from exc
            if T.shape != (4, 4) or not np.all(np.isfinite(T)):
                raise ValueError(f"{path}: T_world_camera of {name!r} must be a finite 4x4 matrix")
            poses[str(name)] = T
        unknown = sorted(set(poses) - set(names))
        if unknown:
            raise ValueError(f"{path}: poses for frames that do not exist: {unknown[:5]}")
        return poses
    path = os.path.join(folder, "trajectory.log")
    if os.path.isfile(path):
        traj = read_trajectory_log(path)
        if len(traj) != len(names):
            raise ValueError(f"{path}: {len(traj)} poses for {len(names)} frames (one per frame, in order)")
        return dict(zip(names, traj))
    return {}


def _read_color(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: could not read the colour image")
    if img.dtype != np.uint8:
        raise ValueError(f"{path}: colour must be 8-bit, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.shape[2] != 3:
        raise ValueError(f"{path}: colour must have 1, 3 or 4 channels, got {img.shape[2]}")
    return np.ascontiguousarray(img[:, :, ::-1])


def _read_depth_units(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: could not read the depth image")
    if img.ndim != 2 or img.dtype != np.uint16:
        raise ValueError(f"{path}: depth must be a single-channel 16-bit PNG, got {img.dtype} with shape "
                         f"{img.shape}")
    return img


def read_capture_folder(folder: str, depth_scale: float | None = None, stride: int = 1,
                        max_frames: int | None = None) -> list:
    """The frames of a capture folder (layout in the module docstring).

    Args:
        folder: the capture folder.
        depth_scale: metres per depth unit; ``None`` = from ``capture.json`` / ``config.json`` / 0.001.
        stride: keep every ``stride``-th frame (after sorting by name).
        max_frames: keep at most this many frames (after the stride).
    Returns:
        ``[Frame]`` sorted by name: rgb (H, W, 3) uint8, depth (H, W) float32 metres (0 = no depth), K from the
        intrinsics, ``T_world_camera`` from ``poses.json`` / ``trajectory.log`` (else ``None``), ``stamp`` from
        ``capture.json`` (else 0), ``mask`` from ``mask/`` (else ``None``), ``info["files"]`` the source paths.
    Raises:
        ValueError naming the file: missing folder or intrinsics, colour and depth that do not pair up one to one,
        a size differing from the intrinsics' or between colour and depth, depth that is not 16-bit, bad JSON.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: capture folder does not exist")
    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError(f"read_capture_folder: stride and max_frames must be >= 1, got {stride}, {max_frames}")
    K, width, height = read_open3d_intrinsic(_find_intrinsic(folder))
    color_dir = _find_color_dir(folder)
    depth_dir = os.path.join(folder, "depth")
    if not os.path.isdir(depth_dir):
        raise ValueError(f"{folder}: no depth/ folder (16-bit PNGs)")
    colors = _list_images(color_dir, COLOR_EXTENSIONS)
    depths = _list_images(depth_dir, (".png",))
    if not colors:
        raise ValueError(f"{color_dir}: no colour images ({', '.join(COLOR_EXTENSIONS)})")
    if set(colors) != set(depths):
        only_c = sorted(set(colors) - set(depths))
        only_d = sorted(set(depths) - set(colors))
        raise ValueError(f"{folder}: {len(colors)} colour images in {color_dir} and {len(depths)} depth images in "
                         f"{depth_dir} do not pair up by name (colour without depth: {only_c[:3]}; depth without "
                         f"colour: {only_d[:3]})")
    names = sorted(colors)
    scale = _depth_scale(folder, depth_scale)
    poses = _read_poses(folder, names)
    meta = read_json(os.path.join(folder, "capture.json")) if os.path.isfile(os.path.join(folder, "capture.json")) \
        else {}
    stamps = meta.get("stamps", {}) if isinstance(meta, dict) else {}
    mask_dir = os.path.join(folder, "mask")
    masks = _list_images(mask_dir, (".png",)) if os.path.isdir(mask_dir) else {}
    names = names[::stride]
    if max_frames is not None:
        names = names[:max_frames]
    frames = []
    for name in names:
        cpath, dpath = os.path.join(color_dir, colors[name]), os.path.join(depth_dir, depths[name])
        rgb = _read_color(cpath)
        units = _read_depth_units(dpath)
        for path, shape in ((cpath, rgb.shape[:2]), (dpath, units.shape)):
            if shape != (height, width):
                raise ValueError(f"{path}: image is {shape[1]}x{shape[0]} but the intrinsics say {width}x{height} "
                                 "(depth must be registered to the colour image)")
        mask = None
        files = {"color": cpath, "depth": dpath}
        if name in masks:
            import cv2

            mpath = os.path.join(mask_dir, masks[name])
            m = cv2.imread(mpath, cv2.IMREAD_UNCHANGED)
            if m is None or m.shape[:2] != (height, width):
                raise ValueError(f"{mpath}: unreadable or not {width}x{height}")
            mask = (m.reshape(height, width, -1) != 0).any(axis=2)
            files["mask"] = mpath
        depth = units.astype(np.float32) * np.float32(scale)
        frames.append(Frame(rgb=rgb, depth=depth, K=K, name=name, T_world_camera=poses.get(name),
                            stamp=float(stamps.get(name, 0.0)), mask=mask,
                            info={"files": files, "depth_scale": scale}))
    return frames


def write_frame_images(folder: str, frame: Frame, depth_scale: float = DEFAULT_CAPTURE_DEPTH_SCALE,
                       write_mask: bool = True, color_dir: str = "color") -> dict:
    """Write one frame's images in the capture layout, each atomically: ``<color_dir>/<name>.png`` (RGB),
    ``depth/<name>.png`` (16-bit, metres / ``depth_scale``; 0 = no depth, beyond 65535 units becomes 0) and, when
    ``write_mask`` and the frame has a mask, ``mask/<name>.png`` (0 / 255). The one per-frame writer of
    :func:`write_capture_folder` and :class:`.keyframes.CaptureFolderWriter`. Returns ``{kind: path}``.
    """
    if not frame.name or os.sep in frame.name or frame.name.startswith("."):
        raise ValueError(f"{folder}: frame name {frame.name!r} is not a file stem")
    if color_dir not in COLOR_DIRS:
        raise ValueError(f"{folder}: colour folder must be one of {COLOR_DIRS}, got {color_dir!r}")
    paths = {"color": os.path.join(folder, color_dir, frame.name + ".png"),
             "depth": os.path.join(folder, "depth", frame.name + ".png")}
    write_png(paths["color"], frame.rgb)
    write_png(paths["depth"], encode_depth(frame.depth, depth_scale))
    if write_mask and frame.mask is not None:
        paths["mask"] = os.path.join(folder, "mask", frame.name + ".png")
        write_png(paths["mask"], frame.mask.astype(np.uint8) * 255)
    return paths


def write_capture_metadata(folder: str, depth_scale: float, stamps: dict, poses: dict | None = None,
                           intrinsic=None) -> None:
    """Write the capture folder's JSON files, each atomically, ``capture.json`` last (it lists the frames: a frame
    whose images exist but which ``capture.json`` does not name was not finished).

    Args:
        depth_scale: metres per depth unit of the depth PNGs.
        stamps: ``{name: seconds}`` of every frame of the folder.
        poses: ``{name: (4, 4)}`` camera-to-world poses; ``poses.json`` is written when not empty (else left as is).
        intrinsic: ``(K, width, height)``: ``camera_intrinsic.json`` is written when given.
    """
    if intrinsic is not None:
        K, width, height = intrinsic
        atomic_write_json(os.path.join(folder, "camera_intrinsic.json"), open3d_intrinsic_dict(K, width, height))
    if poses:
        atomic_write_json(os.path.join(folder, "poses.json"),
                          {"T_world_camera": {name: np.asarray(T, dtype=np.float64).tolist()
                                              for name, T in poses.items()}})
    atomic_write_json(os.path.join(folder, "capture.json"),
                      {"depth_scale": float(depth_scale), "stamps": {name: float(t) for name, t in stamps.items()}})


def write_capture_folder(frames, folder: str, depth_scale: float = DEFAULT_CAPTURE_DEPTH_SCALE,
                         write_poses: bool = True, write_masks: bool = True) -> str:
    """Write frames in the layout :func:`read_capture_folder` reads; every file atomically, ``capture.json`` last
    (:func:`write_frame_images` per frame, then :func:`write_capture_metadata`). To add frames one at a time to a
    folder, resumably, use :class:`.keyframes.CaptureFolderWriter`.

    Args:
        frames: :class:`Frame` s sharing one size and one ``K`` (one camera); names must be unique file stems.
        folder: created when missing; files of the same names are replaced.
        depth_scale: metres per depth unit of the 16-bit depth PNGs (0.001 = millimetres, at most 65.535 m;
            farther depth becomes 0).
        write_poses: write ``poses.json`` when every frame has a ``T_world_camera``.
        write_masks: write ``mask/<name>.png`` (0 / 255) for frames with a mask.
    Returns:
        ``folder``.
    """
    frames = list(frames)
    if not frames:
        raise ValueError(f"write_capture_folder {folder}: no frames")
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise ValueError(f"write_capture_folder {folder}: depth_scale must be > 0, got {depth_scale}")
    first = frames[0]
    names = [f.name for f in frames]
    if len(set(names)) != len(names):
        raise ValueError(f"write_capture_folder {folder}: frame names repeat")
    for f in frames:
        if not f.name or os.sep in f.name or f.name.startswith("."):
            raise ValueError(f"write_capture_folder {folder}: frame name {f.name!r} is not a file stem")
        if (f.height, f.width) != (first.height, first.width) or not np.allclose(f.K, first.K):
            raise ValueError(f"write_capture_folder {folder}: frame {f.name} has another size or K than frame "
                             f"{first.name} (one camera per capture folder)")
    os.makedirs(folder, exist_ok=True)
    for f in frames:
        write_frame_images(folder, f, depth_scale, write_mask=write_masks)
    poses = ({f.name: f.T_world_camera for f in frames}
             if write_poses and all(f.T_world_camera is not None for f in frames) else None)
    write_capture_metadata(folder, depth_scale, {f.name: f.stamp for f in frames}, poses,
                           intrinsic=(first.K, first.width, first.height))
    return folder
