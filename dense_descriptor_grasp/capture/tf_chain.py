"""The transform between two frames of a TF tree, from the transforms as they arrive on /tf and /tf_static
(ROS-free: no tf2, numpy only; a message is read by duck typing).

A TF tree gives every frame at most one parent; a transform ``(parent, child, T_parent_child)`` maps points of
``child`` into ``parent`` (geometry_msgs/TransformStamped: ``header.frame_id`` = parent, ``child_frame_id`` =
child). :class:`TransformTree` keeps the **latest** transform of each link (no interpolation in time: right for a
camera that stands still while a keyframe is taken, or for a robot whose TF is published faster than it moves)
and chains them: ``lookup(a, b)`` is ``T_a_b`` through the tree, whatever the direction of each link.
Frame names lose a leading ``/`` (as tf2 does). Thread-safe (a ROS callback adds while a worker looks up).
"""
from __future__ import annotations

import threading
from typing import Iterable, Optional

import numpy as np

__all__ = ["TransformTree", "TfLookupError", "transform_to_matrix"]


class TfLookupError(LookupError):
    """No transform between two frames: a frame is unknown or the tree has no path between them."""


def _frame(name) -> str:
    name = str(name).strip()
    return name[1:] if name.startswith("/") else name


def transform_to_matrix(translation, rotation_xyzw) -> np.ndarray:
    """``(4, 4)`` from a translation ``(x, y, z)`` and a quaternion ``(x, y, z, w)`` (normalised here; a zero
    or non-finite quaternion is a ``ValueError``)."""
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    q = np.asarray(rotation_xyzw, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))) or norm < 1e-9:
        raise ValueError(f"transform needs a finite translation and a non-zero finite quaternion (x, y, z, w); got "
                         f"{t.tolist()}, {q.tolist()}")
    from dense_descriptor_grasp.geometry.se3 import matrix_from_quaternion

    T = np.eye(4)
    T[:3, :3] = matrix_from_quaternion(q / norm)
    T[:3, 3] = t
    return T


class TransformTree:
    """The latest transform of each parent -> child link, and lookups through the tree.

    ``add(parent, child, T_parent_child, stamp=0.0, static=False)``; ``add_message(msg, static)`` for a
    geometry_msgs/TransformStamped; ``add_messages(msgs, static)`` for the ``transforms`` of a
    tf2_msgs/TFMessage. A child that arrives with a new parent is re-parented (the newest message wins, as in tf2).
    """

    def __init__(self):
        self._links: dict[str, tuple[str, np.ndarray, float, bool]] = {}   # child -> (parent, T, stamp, static)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ input
    def add(self, parent: str, child: str, T_parent_child, stamp: float = 0.0, static: bool = False) -> None:
        parent, child = _frame(parent), _frame(child)
        if not parent or not child:
            raise ValueError(f"transform with an empty frame name (parent {parent!r}, child {child!r})")
        if parent == child:
            raise ValueError(f"transform from frame {child!r} to itself")
        T = np.asarray(T_parent_child, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"transform {parent!r} -> {child!r} must be a finite 4x4 matrix")
        with self._lock:
            self._links[child] = (parent, T.copy(), float(stamp), bool(static))

    def add_message(self, msg, static: bool = False) -> None:
        """One geometry_msgs/TransformStamped (or anything with the same fields)."""
        tr, rot = msg.transform.translation, msg.transform.rotation
        T = transform_to_matrix((tr.x, tr.y, tr.z), (rot.x, rot.y, rot.z, rot.w))
        stamp = float(msg.header.stamp.sec) + 1e-9 * float(msg.header.stamp.nanosec)
        self.add(msg.header.frame_id, msg.child_frame_id, T, stamp, static)

    def add_messages(self, transforms: Iterable, static: bool = False) -> list[str]:
        """Each TransformStamped of a TFMessage's ``transforms``; a bad one is skipped. Returns the problems."""
        problems = []
        for msg in transforms:
            try:
                self.add_message(msg, static)
            except (ValueError, AttributeError, TypeError) as exc:
                problems.append(f"{getattr(getattr(msg, 'header', None), 'frame_id', '?')!r} -> "
                                f"{getattr(msg, 'child_frame_id', '?')!r}: {exc}")
        return problems

    # ------------------------------------------------------------------ queries
    @property
    def frames(self) -> list[str]:
        with self._lock:
            return sorted(set(self._links) | {p for p, _, _, _ in self._links.values()})

    def _chain(self, frame: str, links: dict) -> list[str]:
        """``[frame, parent, grandparent, ..., root]`` (a loop in the tree ends the chain)."""
        chain = [frame]
        while chain[-1] in links:
            parent = links[chain[-1]][0]
            if parent in chain:
                raise TfLookupError(f"TF tree has a loop through {parent!r}: {' -> '.join(chain + [parent])}")
            chain.append(parent)
        return chain

    def lookup(self, target: str, source: str) -> np.ndarray:
        """``T_target_source`` (4, 4): maps points of ``source`` into ``target`` (tf2's
        ``lookup_transform(target, source)``), from the latest transforms."""
        return self.lookup_stamped(target, source)[0]

    def lookup_stamped(self, target: str, source: str) -> tuple[np.ndarray, Optional[float]]:
        """``(T_target_source, oldest stamp of the non-static links used or None when all are static)``.

        Raises:
            TfLookupError naming the missing link: a frame no transform names, or two frames in separate trees
            (each with the root it reaches).
        """
        target, source = _frame(target), _frame(source)
        with self._lock:
            links = dict(self._links)
        if target == source:
            return np.eye(4), None
        known = set(links) | {p for p, _, _, _ in links.values()}
        for name in (target, source):
            if name not in known:
                shown = ", ".join(sorted(known)[:12]) or "none yet"
                raise TfLookupError(f"no transform {target!r} -> {source!r}: frame {name!r} is unknown (no /tf or "
                                    f"/tf_static transform names it; known frames: {shown})")
        up_t, up_s = self._chain(target, links), self._chain(source, links)
        common = next((f for f in up_s if f in up_t), None)
        if common is None:
            raise TfLookupError(f"no transform {target!r} -> {source!r}: they are in two unconnected TF trees "
                                f"({' -> '.join(up_t)}; {' -> '.join(up_s)}); a transform between "
                                f"{up_t[-1]!r} and {up_s[-1]!r} is missing")
        stamps = []

        def T_common(chain):                        # T_common_frame along chain[0] .. common
            T = np.eye(4)
            for child in chain[:chain.index(common)]:
                parent, T_pc, stamp, static = links[child]
                T = T_pc @ T
                if not static:
                    stamps.append(stamp)
            return T

        T_c_target, T_c_source = T_common(up_t), T_common(up_s)
        T = np.linalg.inv(T_c_target) @ T_c_source
        return T, (min(stamps) if stamps else None)
