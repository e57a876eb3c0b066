"""Keyframes of a live capture and the capture folder they go to, one frame at a time (ROS-free).

:class:`KeyframeSelector` decides which frames of a stream to keep. Its modes:

* **motion** (the frame has a camera pose ``T_world_camera``, e.g. from TF): kept when it is the first frame with a
  pose, or when the camera moved more than ``min_translation`` metres **or** turned more than ``min_rotation_deg``
  degrees since the last kept keyframe that had a pose.
* **interval** (the frame has no pose): kept when it is the first frame, or ``interval`` seconds (of the frames'
  stamps) after the last kept keyframe; ``interval = 0`` switches this off. A stamp earlier than the last kept
  one (a bag restarted, a simulator reset) restarts the interval from that frame.
* **request**: after :meth:`KeyframeSelector.request`, the next frame considered is kept whatever its pose or
  stamp (the request is then used up). With ``automatic=False`` requests are the only way a frame is kept.

:class:`CaptureFolderWriter` appends one :class:`~.frames.Frame` at a time to a capture folder in exactly the
layout :func:`~.importer.read_capture_folder` reads (Open3D's recorder layout, see :mod:`.importer`): the images
through :func:`~.importer.write_frame_images` (each atomic), then ``poses.json`` and ``capture.json`` rewritten
atomically (:func:`~.importer.write_capture_metadata`); ``capture.json``, written last, lists the finished
frames. It resumes: opening a folder that holds frames continues the numbering after them and keeps their stamps
and poses; images of a frame that ``capture.json`` does not list (a writer killed mid-frame) are removed. Until a
writer reopens such a folder, :func:`~.importer.read_capture_folder` may refuse it (a colour image without its
depth) or read the unfinished frame without stamp and pose.
"""
from __future__ import annotations

import os
import threading
from typing import Optional

import numpy as np

from .frames import Frame
from .importer import (DEFAULT_CAPTURE_DEPTH_SCALE, COLOR_DIRS, COLOR_EXTENSIONS, _depth_scale, _find_intrinsic,
                       _list_images, _read_poses, read_json, read_open3d_intrinsic, write_capture_metadata,
                       write_frame_images)

__all__ = ["KeyframeSelector", "CaptureFolderWriter", "pose_change"]

REASONS = ("first", "request", "moved", "interval")


def pose_change(T_a, T_b) -> tuple[float, float]:
    """``(translation in metres, rotation in degrees)`` between two camera poses ``(4, 4)`` (camera-to-world):
    the distance between the camera centres and the angle of the relative rotation."""
    T_a, T_b = np.asarray(T_a, dtype=np.float64), np.asarray(T_b, dtype=np.float64)
    translation = float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))
    R = T_a[:3, :3].T @ T_b[:3, :3]
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    return translation, float(np.degrees(np.arccos(cos)))


class KeyframeSelector:
    """Chooses keyframes from a stream of ``(stamp, T_world_camera or None)`` (modes in the module docstring).

    Use :meth:`decide` to ask and :meth:`keep` once the frame is really kept (written), or :meth:`consider` for
    both at once. Thread-safe: :meth:`request` may be called from another thread (a service callback).

    Args:
        min_translation: metres the camera must move (motion mode); ``> 0``.
        min_rotation_deg: degrees the camera must turn (motion mode); ``> 0``.
        interval: seconds between keyframes of frames without a pose (interval mode); 0 = never by time.
        automatic: ``False`` = keep frames only on request.
    """

    def __init__(self, min_translation: float = 0.05, min_rotation_deg: float = 10.0, interval: float = 1.0,
                 automatic: bool = True):
        if not (np.isfinite(min_translation) and min_translation > 0):
            raise ValueError(f"KeyframeSelector: min_translation must be > 0 metres, got {min_translation}")
        if not (np.isfinite(min_rotation_deg) and min_rotation_deg > 0):
            raise ValueError(f"KeyframeSelector: min_rotation_deg must be > 0 degrees, got {min_rotation_deg}")
        if not (np.isfinite(interval) and interval >= 0):
            raise ValueError(f"KeyframeSelector: interval must be >= 0 seconds (0 = off), got {interval}")
        self.min_translation = float(min_translation)
        self.min_rotation_deg = float(min_rotation_deg)
        self.interval = float(interval)
        self.automatic = bool(automatic)
        self.last_stamp: Optional[float] = None        # stamp of the last kept keyframe
        self.last_pose: Optional[np.ndarray] = None    # pose of the last kept keyframe that had one
        self.kept = 0
        self._requested = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ requests
    def request(self) -> None:
        """Keep the next frame considered, whatever its pose or stamp."""
        with self._lock:
            self._requested = True

    @property
    def requested(self) -> bool:
        with self._lock:
            return self._requested

    # ------------------------------------------------------------------ decisions
    def decide(self, stamp: float, T_world_camera=None) -> Optional[str]:
        """Why this frame should be kept (``"request"``, ``"first"``, ``"moved"``, ``"interval"``) or ``None``.

        Records nothing (call :meth:`keep` once the frame is written), except that a stamp earlier than the last
        keyframe's restarts the interval from it.
        """
        stamp = float(stamp)
        with self._lock:
            if self._requested:
                return "request"
            if not self.automatic:
                return None
            if T_world_camera is not None:
                if self.last_pose is None:
                    return "first"
                translation, rotation = pose_change(self.last_pose, T_world_camera)
                if translation > self.min_translation or rotation > self.min_rotation_deg:
                    return "moved"
                return None
            if self.last_stamp is None:
                return "first"
            if stamp < self.last_stamp:             # time went backwards: restart the interval here
                self.last_stamp = stamp
                return None
            if self.interval > 0 and stamp - self.last_stamp >= self.interval:
                return "interval"
            return None

    def keep(self, stamp: float, T_world_camera=None, reason: str = "request") -> None:
        """Record a kept keyframe (a ``"request"`` uses the pending request up). Also used to seed the selector
        with the last frame of a resumed capture (any reason, e.g. ``"resumed"``)."""
        with self._lock:
            self.last_stamp = float(stamp)
            if T_world_camera is not None:
                self.last_pose = np.array(T_world_camera, dtype=np.float64)
            if reason == "request":
                self._requested = False
            if reason in REASONS:
                self.kept += 1

    def consider(self, stamp: float, T_world_camera=None) -> Optional[str]:
        """:meth:`decide` and, when the frame is to be kept, :meth:`keep`; returns the reason or ``None``."""
        reason = self.decide(stamp, T_world_camera)
        if reason is not None:
            self.keep(stamp, T_world_camera, reason)
        return reason

    def motion_since_last(self, T_world_camera) -> Optional[tuple[float, float]]:
        """``(metres, degrees)`` from the last kept posed keyframe, or ``None`` when either pose is missing."""
        with self._lock:
            last = self.last_pose
        if last is None or T_world_camera is None:
            return None
        return pose_change(last, T_world_camera)


class CaptureFolderWriter:
    """Appends frames one at a time to a capture folder (module docstring), atomically and resumably.

    Args:
        folder: created when missing. When it holds a capture already (``camera_intrinsic.json`` and images),
            the writer continues after its frames: their names, stamps, poses and depth scale are kept.
        depth_scale: metres per unit of the 16-bit depth PNGs; ``None`` = the folder's (``capture.json`` /
            Open3D ``config.json``) or 0.001 (millimetres) for a new folder. A value differing from a resumed
            folder's is refused.
        K, width, height: the camera, when known before the first frame (else the first frame's). A folder whose
            ``camera_intrinsic.json`` differs from them is refused (``ValueError`` naming the file).
        name_digits: zero-padded width of new frame names (``000012``).
        write_masks: write the frames' masks (``mask/``) when they have one.

    Attributes:
        names, stamps, poses: the folder's frames (``{name: seconds}``, ``{name: (4, 4)}``).
        removed: paths of unfinished frames' images removed when the folder was opened.
        resumed: number of frames the folder held when opened.
    Raises:
        ValueError naming the file: a folder whose intrinsics or image size differ from ``K`` / the frames, whose
        images do not pair up, or whose JSON files are unreadable.
    """

    def __init__(self, folder, depth_scale: float | None = None, K=None, width: int | None = None,
                 height: int | None = None, name_digits: int = 6, write_masks: bool = True):
        self.folder = os.fspath(folder)
        self.name_digits = int(name_digits)
        self.write_masks = bool(write_masks)
        self.names: list[str] = []
        self.stamps: dict[str, float] = {}
        self.poses: dict[str, np.ndarray] = {}
        self.removed: list[str] = []
        self.color_dir = COLOR_DIRS[0]
        self.K: Optional[np.ndarray] = None
        self.width: Optional[int] = None
        self.height: Optional[int] = None
        self._intrinsic_path = os.path.join(self.folder, "camera_intrinsic.json")
        self._intrinsic_written = False
        self._listed = False          # capture.json lists this folder's frames (written before the first images)
        if depth_scale is not None and not (np.isfinite(depth_scale) and 0 < depth_scale <= 1.0):
            raise ValueError(f"{self.folder}: depth_scale must be in (0, 1] metres per unit, got {depth_scale}")
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise ValueError(f"{self.folder}: exists and is not a folder")
        self.depth_scale = self._open_existing(depth_scale)
        self.resumed = len(self.names)
        if K is not None:
            if width is None or height is None:
                raise ValueError(f"{self.folder}: give width and height with K")
            self._check_camera(np.asarray(K, dtype=np.float64), int(width), int(height), "the camera given")

    # ------------------------------------------------------------------ opening / resuming
    def _open_existing(self, depth_scale) -> float:
        folder = self.folder
        if not os.path.isdir(folder):
            return float(depth_scale) if depth_scale is not None else DEFAULT_CAPTURE_DEPTH_SCALE
        for name in COLOR_DIRS:
            if os.path.isdir(os.path.join(folder, name)):
                self.color_dir = name
                break
        color_dir, depth_dir = os.path.join(folder, self.color_dir), os.path.join(folder, "depth")
        colors = _list_images(color_dir, COLOR_EXTENSIONS) if os.path.isdir(color_dir) else {}
        depths = _list_images(depth_dir, (".png",)) if os.path.isdir(depth_dir) else {}
        mask_dir = os.path.join(folder, "mask")
        masks = _list_images(mask_dir, (".png",)) if os.path.isdir(mask_dir) else {}
        try:
            intrinsic = _find_intrinsic(folder)
        except ValueError:
            intrinsic = None
        if intrinsic is not None:
            K, width, height = read_open3d_intrinsic(intrinsic)
            self.K, self.width, self.height = K, width, height
            self._intrinsic_path, self._intrinsic_written = intrinsic, True
        capture = os.path.join(folder, "capture.json")
        meta = read_json(capture) if os.path.isfile(capture) else None
        if meta is not None and not (isinstance(meta, dict) and isinstance(meta.get("stamps", {}), dict)):
            raise ValueError(f"{capture}: expected {{\"depth_scale\": metres per unit, \"stamps\": {{name: seconds}}}}")
        ours = meta is not None and "stamps" in meta     # written by this package: capture.json lists the frames
        self._listed = ours
        if ours:
            finished = set(meta["stamps"])
        else:                                       # another tool's folder: every paired frame is finished
            finished = set(colors) & set(depths)
        unfinished = sorted((set(colors) | set(depths) | set(masks)) - finished)
        missing = sorted(n for n in finished if n not in colors or n not in depths)
        if missing:
            raise ValueError(f"{capture}: lists frame(s) {missing[:3]} whose colour or depth image is missing in "
                             f"{color_dir} / {depth_dir}; not resuming a damaged capture")
        last_finished = max(finished) if finished else None
        for name in unfinished:                   # a writer stopped mid-frame: its images are not part of it
            for d, table in ((color_dir, colors), (depth_dir, depths), (mask_dir, masks)):
                if name not in table:
                    continue
                path = os.path.join(d, table[name])
                if not ours:
                    raise ValueError(f"{path}: has no colour/depth partner; cannot resume this folder")
                if last_finished is not None and name < last_finished:
                    raise ValueError(f"{path}: an image {capture} does not list, named before its last frame "
                                     f"{last_finished!r} (not left by an interrupted writer); move it away to "
                                     "resume this folder")
                os.remove(path)
                self.removed.append(path)
        self.names = sorted(finished)
        if self.names and intrinsic is None:
            _find_intrinsic(folder)                 # raises, naming the expected files
        stamps = meta.get("stamps", {}) if ours else {}
        try:
            self.stamps = {n: float(stamps.get(n, 0.0)) for n in self.names}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{capture}: stamps must be numbers ({exc})") from exc
        # poses.json is written before capture.json: it may name the unfinished frame too
        poses = _read_poses(folder, sorted(finished | set(unfinished)) if ours else self.names) if (
            self.names or unfinished) else {}
        self.poses = {n: T for n, T in poses.items() if n in finished}
        folder_scale = _depth_scale(folder, None) if (self.names or meta is not None) else None
        if folder_scale is not None and depth_scale is not None and not np.isclose(folder_scale, depth_scale):
            raise ValueError(f"{capture if meta is not None else folder}: the capture's depth scale is "
                             f"{folder_scale} metres per unit, not the {depth_scale} asked for; resume with the "
                             "folder's depth scale or use another folder")
        poses_path = os.path.join(folder, "poses.json")
        if len(poses) != len(self.poses):          # drop the unfinished frame's pose
            if self.poses:
                write_capture_metadata(folder, folder_scale, self.stamps, self.poses)
            elif os.path.isfile(poses_path):
                os.remove(poses_path)
                self.removed.append(poses_path)
        return float(folder_scale if folder_scale is not None else
                     depth_scale if depth_scale is not None else DEFAULT_CAPTURE_DEPTH_SCALE)

    def _check_camera(self, K: np.ndarray, width: int, height: int, source: str) -> None:
        if self.K is None:
            self.K, self.width, self.height = K, width, height
            return
        if (width, height) != (self.width, self.height) or not np.allclose(K, self.K, rtol=1e-6, atol=1e-6):
            raise ValueError(f"{self._intrinsic_path}: this capture's camera is {self.width}x{self.height} with K "
                             f"{np.round(self.K, 3).tolist()}, but {source} is {width}x{height} with K "
                             f"{np.round(K, 3).tolist()}; one camera per capture folder: use another folder")

    # ------------------------------------------------------------------ appending
    def __len__(self) -> int:
        return len(self.names)

    @property
    def next_name(self) -> str:
        """The name the next appended frame gets: one more than the largest numeric name."""
        numbers = [int(n) for n in self.names if n.isdigit()]
        return f"{(max(numbers) + 1) if numbers else len(self.names):0{self.name_digits}d}"

    def append(self, frame: Frame) -> str:
        """Write one frame as :attr:`next_name` (its own name is ignored); returns the name.

        Order: on a new folder first ``camera_intrinsic.json`` and an empty ``capture.json``; then the colour,
        depth (and mask) images, ``poses.json`` (when the frame or an earlier one has a pose) and ``capture.json``
        last, which lists the frame; each file atomic. A writer killed at any point leaves a folder that
        :func:`~.importer.read_capture_folder` reads (without the unfinished frame) and that this class resumes.
        """
        self._check_camera(frame.K, frame.width, frame.height, f"frame {frame.name}")
        name = self.next_name
        if not self._listed:
            os.makedirs(self.folder, exist_ok=True)
            write_capture_metadata(self.folder, self.depth_scale, self.stamps, self.poses,
                                   intrinsic=None if self._intrinsic_written else (self.K, self.width, self.height))
            self._intrinsic_written = self._listed = True
        to_write = Frame(rgb=frame.rgb, depth=frame.depth, K=frame.K, name=name, T_world_camera=frame.T_world_camera,
                         stamp=frame.stamp, mask=frame.mask if self.write_masks else None)
        write_frame_images(self.folder, to_write, self.depth_scale, write_mask=self.write_masks,
                           color_dir=self.color_dir)
        stamps = dict(self.stamps, **{name: float(frame.stamp)})
        poses = dict(self.poses)
        if frame.T_world_camera is not None:
            poses[name] = np.array(frame.T_world_camera, dtype=np.float64)
        write_capture_metadata(self.folder, self.depth_scale, stamps, poses)
        self.names.append(name)
        self.stamps, self.poses = stamps, poses
        return name

    @property
    def last(self) -> Optional[tuple[str, float, Optional[np.ndarray]]]:
        """``(name, stamp, T_world_camera or None)`` of the last frame (by name), or ``None`` when empty."""
        if not self.names:
            return None
        name = max(self.names)
        return name, self.stamps.get(name, 0.0), self.poses.get(name)
