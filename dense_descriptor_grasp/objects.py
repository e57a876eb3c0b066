"""The object registry: every object the generator renders, the grasp judge picks, the sim camera shows and the
evaluation, demo and benchmarks name parts of -- one entry per object, one :class:`ObjectSpec` type.

An entry says how to load the object (a URDF or OBJ file of ``pybullet_data``, a uniform scale), how it stands
upright on the table (``upright_rpy``), whether it may lie on any face as a distractor (``tumble``), its named
parts (points in the object frame) and the reference grasp's orientation at a part (``grasp_rotations``).
The object frame is the URDF's base-link frame (not pybullet's centre-of-mass frame). Every object also has the
part ``top``, the top centre of its upright bounding box (computed with pybullet, ``sim/bodies.py``).

Readers: ``data/render.py`` (scenes, distractors), ``sim/grasp_sim.py`` (the judge), ``sim/cameras.py``,
``capture/simulate.py``, ``evaluation/semantic.py``, ``grasping/reference_view.py``'s callers (the demo, the grasp
benchmark). Importing this module loads neither pybullet nor torch.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ObjectSpec", "OBJECT_LIBRARY", "RANDOM_URDF_COUNT", "resolve_object", "random_urdf_path",
           "rpy_matrix", "top_down_grasp_rotation", "object_parts", "named_parts", "part_world", "pybullet_data_path"]

RANDOM_URDF_COUNT = 1000  # pybullet_data/random_urdfs/000 .. 999


@dataclass(frozen=True)
class ObjectSpec:
    """One object.

    name: the registry name (or the file's stem / the ``random_urdfs/NNN`` name for objects outside it).
    path: absolute path of the .urdf or .obj file.
    scale: uniform scale (pybullet ``globalScaling`` / ``meshScale``) of the object as registered.
    upright_rpy: fixed-axis roll / pitch / yaw (radians) that turns the model's frame so that its "up" is world
        +z before a random yaw (the duck mesh is modelled y-up); :attr:`upright` is the matrix.
    tumble: as a distractor it may lie on any of its six bounding-box faces.
    parts: part name -> point (3,) in the object frame, metres at ``scale``.
    default_part: the part grasped unless another is named (``top`` when the object has no named parts).
    grasp_rotations: part name -> (3, 3) ``R_object_grasp`` of the reference grasp at that part (z = approach
        into the part, y = finger closing axis); parts without one get a top-down grasp (``sim/grasp_sim.py``).
    """

    name: str
    path: str
    scale: float = 1.0
    upright_rpy: tuple = (0.0, 0.0, 0.0)
    tumble: bool = False
    parts: dict = field(default_factory=dict, hash=False)
    default_part: str = "top"
    grasp_rotations: dict = field(default_factory=dict, hash=False)

    @property
    def upright(self) -> np.ndarray:
        """(3, 3) ``R_world_object`` of the upright resting pose (before the random yaw)."""
        return rpy_matrix(self.upright_rpy)


def rpy_matrix(rpy) -> np.ndarray:
    """(3, 3) rotation ``Rz(yaw) Ry(pitch) Rx(roll)`` of fixed-axis roll / pitch / yaw in radians."""
    r, p, y = rpy
    Rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    Ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    Rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def top_down_grasp_rotation(closing_axis_object, R_world_object_upright) -> tuple:
    """(3, 3) ``R_object_grasp`` (as nested tuples) of a top-down grasp (approach = world -z in the upright pose
    ``R_world_object_upright``) whose fingers close along ``closing_axis_object`` (3,)."""
    R_wo = np.asarray(R_world_object_upright)
    z_w = np.array([0.0, 0.0, -1.0])
    y_w = R_wo @ np.asarray(closing_axis_object, dtype=np.float64)
    y_w = y_w - (y_w @ z_w) * z_w
    y_w /= np.linalg.norm(y_w)
    x_w = np.cross(y_w, z_w)
    return tuple(map(tuple, R_wo.T @ np.stack([x_w, y_w, z_w], axis=1)))


_Y_UP = (math.pi / 2, 0.0, 0.0)   # models whose up is +y (the duck, the teddy)

# Duck parts: vertices of the visual mesh duck.obj scaled by the URDF's 0.05 (object frame, metres):
#   head_top    the highest vertex of the head (the head spans y 0.045..0.082 m and is 4.2 cm across in z): the
#               default part, grasped top-down with the fingers closing across the head (object z axis);
#   beak_tip    the frontmost vertex (the beak points to -x);   tail  the rearmost vertex of the body;
#   left_side / right_side  the body's extreme vertices in +z / -z;   chest  the frontmost body vertex below
#   the head. Six parts so that a 6-DoF pose can be fitted from their matches.
_DUCK_PARTS = {
    "head_top": (-0.0166, 0.0820, 0.0027),
    "beak_tip": (-0.0481, 0.0670, 0.0057),
    "tail": (0.0346, 0.0260, 0.0010),
    "left_side": (-0.0092, 0.0222, 0.0307),
    "right_side": (-0.0051, 0.0219, -0.0270),
    "chest": (-0.0430, 0.0244, -0.0016),
}

# Meshes shipped in the pybullet_data wheel (paths relative to it). The scales make table-top objects (largest
# extent in the comments); as distractors every object is rescaled to a random size anyway
# (data.render.RenderConfig.distractor_size). cube_small / sphere_small are the grasp judge's small cube and
# sphere (the judge called them cube / sphere before the registries were merged).
_ENTRIES = (
    ObjectSpec("duck", "duck_vhacd.urdf", 1.0, _Y_UP, parts=_DUCK_PARTS, default_part="head_top",   # 8.3 cm
               grasp_rotations={"head_top": top_down_grasp_rotation((0.0, 0.0, 1.0), rpy_matrix(_Y_UP))}),
    ObjectSpec("teddy", "teddy_vhacd.urdf", 1.0, _Y_UP),                          # 9.3 cm
    ObjectSpec("lego", "lego/lego.urdf", 2.0, tumble=True),                      # 6.4 cm
    ObjectSpec("soccerball", "soccerball.urdf", 0.15),                           # 15 cm
    ObjectSpec("jenga", "jenga/jenga.urdf", 0.5, tumble=True),                   # 7.5 cm block
    ObjectSpec("domino", "domino/domino.urdf", 1.4, tumble=True),                # 7.1 cm
    ObjectSpec("cube", "cube.urdf", 0.06, tumble=True),                          # 6 cm
    ObjectSpec("sphere", "sphere2.urdf", 0.065),                                 # 6.5 cm, checker texture
    ObjectSpec("mug", "objects/mug.urdf", 0.6),                                  # 7.3 cm
    ObjectSpec("block", "block.urdf", 0.8, tumble=True),                         # 8 cm stick
    ObjectSpec("torus", "torus/torus_textured.obj", 0.05, _Y_UP, tumble=True),   # 7.5 cm ring, lying flat
    ObjectSpec("toy_cube", "toys/cube.obj", 0.8, tumble=True),                   # 7 cm
    ObjectSpec("toy_cylinder", "toys/cylinder.obj", 0.65, tumble=True),          # 7.5 cm
    ObjectSpec("toy_prism", "toys/prism.obj", 0.65, tumble=True),                # 7.7 cm
    ObjectSpec("cube_small", "cube_small.urdf", 1.0, default_part="top_center",  # 5 cm, 0.1 kg
               parts={"top_center": (0.0, 0.0, 0.025), "corner": (0.025, 0.025, 0.025)}),
    ObjectSpec("sphere_small", "sphere_small.urdf", 1.0, parts={"top": (0.0, 0.0, 0.03)}),  # 6 cm, 0.1 kg
)
#: name -> ObjectSpec with ``path`` relative to ``pybullet_data`` (``resolve_object`` makes it absolute).
OBJECT_LIBRARY = {spec.name: spec for spec in _ENTRIES}


def pybullet_data_path() -> str:
    import pybullet_data

    return pybullet_data.getDataPath()


def random_urdf_path(num: str) -> str:
    """Path of ``pybullet_data/random_urdfs/NNN/NNN.urdf``."""
    return os.path.join(pybullet_data_path(), "random_urdfs", num, f"{num}.urdf")


def resolve_object(name_or_path: str) -> ObjectSpec:
    """The :class:`ObjectSpec` of a registry name (:data:`OBJECT_LIBRARY`: ``duck``, ``teddy``, ``lego``, ...),
    of ``random_urdfs/NNN``, of a path to a ``.urdf`` / ``.obj`` file, or of a ``.urdf`` / ``.obj`` path inside
    ``pybullet_data`` (e.g. ``objects/mug.urdf``). Objects outside the registry are upright as modelled, have no
    named parts (only ``top``) and scale 1; ``random_urdfs`` may tumble. Raises ``ValueError`` naming the object."""
    from dataclasses import replace

    if name_or_path in OBJECT_LIBRARY:
        spec = OBJECT_LIBRARY[name_or_path]
        return replace(spec, path=os.path.join(pybullet_data_path(), spec.path))
    if name_or_path.startswith("random_urdfs/"):
        num = name_or_path.split("/", 1)[1]
        path = random_urdf_path(num)
        if not os.path.isfile(path):
            raise ValueError(f"object {name_or_path!r}: no such pybullet_data model ({path} missing; NNN is 000..999)")
        return ObjectSpec(name_or_path, path, 1.0, (0.0, 0.0, 0.0), True)
    if name_or_path.lower().endswith((".urdf", ".obj")):
        if os.path.isfile(name_or_path):
            name = os.path.splitext(os.path.basename(name_or_path))[0]
            return ObjectSpec(name, os.path.abspath(name_or_path), 1.0, (0.0, 0.0, 0.0))
        inside = os.path.join(pybullet_data_path(), name_or_path)
        if os.path.isfile(inside):
            return ObjectSpec(name_or_path, inside, 1.0, (0.0, 0.0, 0.0))
        raise ValueError(f"object file {name_or_path!r} does not exist (nor inside pybullet_data "
                         f"{pybullet_data_path()})")
    raise ValueError(
        f"unknown object {name_or_path!r}: expected one of {sorted(OBJECT_LIBRARY)}, 'random_urdfs/NNN', "
        "or a path to a .urdf / .obj file")


def _spec(object_name) -> ObjectSpec:
    return object_name if isinstance(object_name, ObjectSpec) else resolve_object(object_name)


def _registered_parts(spec: ObjectSpec, scale: float) -> dict:
    return {name: np.asarray(p, dtype=np.float64) * (scale / spec.scale) for name, p in spec.parts.items()}


def object_parts(object_name, scale: float | None = None) -> dict:
    """Named parts of an object (a name or an :class:`ObjectSpec`): part -> point (3,) in the object frame, metres
    at ``scale`` (default: the registry's). Every object also has ``top``, the top centre of its upright bounding
    box (unless a part of that name is registered)."""
    spec = _spec(object_name)
    scale = spec.scale if scale is None else float(scale)
    points = _registered_parts(spec, scale)
    if "top" not in points:
        from dense_descriptor_grasp.sim.bodies import resting_geometry

        points["top"] = np.asarray(resting_geometry(spec.path, float(scale), tuple(spec.upright_rpy))[1])
    return points


def named_parts(object_name, scale: float | None = None) -> dict:
    """The parts an evaluation, a reference or a part-blind guess names: the registered parts of the object, or
    only ``top`` when it has none (part -> point (3,) float64 in the object frame, metres at ``scale``)."""
    spec = _spec(object_name)
    scale = spec.scale if scale is None else float(scale)
    points = _registered_parts(spec, scale) if spec.parts else {"top": object_parts(spec, scale)["top"]}
    return {name: np.asarray(p, dtype=np.float64).reshape(3) for name, p in points.items()}


def part_world(object_name, T_world_object, part: str | None = None, scale: float | None = None) -> np.ndarray:
    """World position (3,) of a named part (default: the object's ``default_part``) for an object pose (4, 4)."""
    spec = _spec(object_name)
    part = part or spec.default_part
    points = object_parts(spec, scale)
    if part not in points:
        raise ValueError(f"object {spec.name!r} has no part {part!r}; parts: {sorted(points)}")
    from dense_descriptor_grasp.sim.bodies import check_pose

    T = check_pose(T_world_object, "T_world_object")
    return T[:3, :3] @ points[part] + T[:3, 3]
