"""pybullet scenes rendered with the CPU renderer (ER_TINY_RENDERER): RGB, metric depth, object masks, K, poses.

Conventions (docs/ARCHITECTURE.md): ``T_world_camera`` is the optical frame (x right, y down, z forward);
depth is metres along the optical axis with 0 = no depth; pixel centres sit at integer ``(u, v)``.

The objects come from the registry (``dense_descriptor_grasp/objects.py``); intrinsics from a field of view, look-at
poses and the OpenGL view / depth conventions from ``geometry/rendering.py``. Scene sampling is plain numpy;
:class:`SceneRenderer` holds one pybullet ``DIRECT`` client.

Two ways to randomise (``RenderConfig``): the plain ``RenderConfig(...)`` keeps the original fixed-fov camera
sampler and light ranges (the grasp benchmark and the sim camera use it, draw for draw); ``RenderConfig.training()``
(the generator's default) draws the camera inside :data:`.camera_spans.TRAINING_CAMERA_SPANS` and the light, floor
and background inside :data:`TRAINING_SCENE_SPANS`. Scenes may hold distractors next to the target
(:func:`expand_distractors`, :data:`DISTRACTOR_SETS`).

Length (~660 lines, over the package's ~400): the scene sampler, the distractor sets and their placement, and the
renderer share ``RenderConfig`` / ``ScenePlan`` / ``PlacedObject``; the distractor sets and placement (~170 lines)
are the part that could move to a module of their own.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from dense_descriptor_grasp.geometry.rendering import depth_from_gl_buffer, gl_view_matrix, intrinsics_from_fov, look_at
from dense_descriptor_grasp.objects import (RANDOM_URDF_COUNT, ObjectSpec, resolve_object,
                                            rpy_matrix)

from .backgrounds import BACKGROUND_KINDS, make_background
from .camera_spans import TRAINING_CAMERA_SPANS, CameraSpans, fit_distance

__all__ = [
    "RenderConfig", "SceneSpans", "TRAINING_SCENE_SPANS", "ScenePlan",
    "PlacedObject", "sample_scene", "sample_camera_pose", "sample_camera", "RenderedView", "SceneRenderer",
    "load_obj_vertices", "quaternion_to_matrix_np", "matrix_to_quaternion_np", "DISTRACTOR_SETS",
    "expand_distractors", "draw_distractors",
]


# Named distractor sets: [(entry, weight)]; an entry is a library name or a range "random_urdfs/AAA-BBB" (one
# random member per draw); a draw picks an entry with probability proportional to its weight. "train" and
# "eval" share no object, so a held-out evaluation can use distractors training never saw.
DISTRACTOR_SETS = {
    "train": [("lego", 1), ("jenga", 1), ("domino", 1), ("cube", 1), ("sphere", 1), ("soccerball", 1),
              ("random_urdfs/000-499", 6)],
    "eval": [("teddy", 1), ("mug", 1), ("block", 1), ("torus", 1), ("toy_cube", 1), ("toy_cylinder", 1),
             ("toy_prism", 1), ("random_urdfs/500-999", 7)],
}


def _parse_random_range(entry: str):
    """``(lo, hi)`` of ``random_urdfs/AAA-BBB`` or None when ``entry`` is not such a range."""
    if not entry.startswith("random_urdfs/") or "-" not in entry:
        return None
    a, _, b = entry.split("/", 1)[1].partition("-")
    if not (a.isdigit() and b.isdigit()):
        raise ValueError(f"distractor range {entry!r}: expected random_urdfs/AAA-BBB with numbers")
    lo, hi = int(a), int(b)
    if not (0 <= lo <= hi < RANDOM_URDF_COUNT):
        raise ValueError(f"distractor range {entry!r}: need 0 <= AAA <= BBB <= {RANDOM_URDF_COUNT - 1}")
    return lo, hi


def expand_distractors(names) -> list:
    """``[(entry, weight)]`` for ``--distractors`` arguments: set names (:data:`DISTRACTOR_SETS`), library names,
    ``random_urdfs/NNN``, ranges ``random_urdfs/AAA-BBB``, or .urdf / .obj paths (weight 1 each). Every entry is
    checked (``ValueError`` naming the bad one); duplicates keep their first position and add their weights."""
    out: dict = {}
    for name in names:
        items = DISTRACTOR_SETS[name] if name in DISTRACTOR_SETS else [(name, 1)]
        for entry, weight in items:
            if _parse_random_range(entry) is None:
                resolve_object(entry)
            out[entry] = out.get(entry, 0) + weight
    return [[k, v] for k, v in out.items()]


def draw_distractors(rng: np.random.Generator, pool: list, count_range) -> list:
    """Draw ``uniform integer in count_range`` distractor :class:`ObjectSpec` s from an expanded ``pool``
    (:func:`expand_distractors`), with replacement, entries weighted."""
    lo, hi = (int(v) for v in count_range)
    if not pool or hi <= 0:
        return []
    n = int(rng.integers(lo, hi + 1))
    weights = np.asarray([w for _, w in pool], dtype=np.float64)
    specs = []
    for i in rng.choice(len(pool), size=n, p=weights / weights.sum()):
        entry = pool[int(i)][0]
        rng_range = _parse_random_range(entry)
        if rng_range is not None:
            entry = f"random_urdfs/{int(rng.integers(rng_range[0], rng_range[1] + 1)):03d}"
        specs.append(resolve_object(entry))
    return specs


# The generator process stays free of torch (importing the CUDA build of torch costs ~700 MB of RSS, 1 GB instead
# of 220 MB peak), so the two quaternion conversions pybullet needs are done here in numpy; test_data_render.py
# checks them against geometry.se3.quaternion_from_matrix / matrix_from_quaternion.
def quaternion_to_matrix_np(q) -> np.ndarray:
    """``(3, 3)`` rotation of a unit quaternion ``(x, y, z, w)`` (as ``geometry.se3.matrix_from_quaternion``)."""
    return np.asarray(_pybullet().getMatrixFromQuaternion(list(q)), dtype=np.float64).reshape(3, 3)


def matrix_to_quaternion_np(R: np.ndarray) -> tuple:
    """``(x, y, z, w)`` with ``w >= 0`` of a rotation (Shepperd, as ``geometry.se3.quaternion_from_matrix``)."""
    R = np.asarray(R, dtype=np.float64)
    t = np.array([1 + R[0, 0] + R[1, 1] + R[2, 2], 1 + R[0, 0] - R[1, 1] - R[2, 2],
                  1 - R[0, 0] + R[1, 1] - R[2, 2], 1 - R[0, 0] - R[1, 1] + R[2, 2]])
    i = int(np.argmax(t))
    s = 2.0 * math.sqrt(max(t[i], 1e-12))
    if i == 0:
        q = (R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1], t[0])
    elif i == 1:
        q = (t[1], R[0, 1] + R[1, 0], R[0, 2] + R[2, 0], R[2, 1] - R[1, 2])
    elif i == 2:
        q = (R[0, 1] + R[1, 0], t[2], R[1, 2] + R[2, 1], R[0, 2] - R[2, 0])
    else:
        q = (R[0, 2] + R[2, 0], R[1, 2] + R[2, 1], t[3], R[1, 0] - R[0, 1])
    q = np.asarray(q) / s
    return tuple((q if q[3] >= 0 else -q).tolist())


def _pybullet():
    import pybullet

    return pybullet


def _pose(position, quaternion) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix_np(quaternion)
    T[:3, 3] = position
    return T


def load_obj_vertices(path: str) -> np.ndarray:
    """``(N, 3)`` float64 vertex positions (``v`` lines) of a Wavefront OBJ file."""
    verts = []
    with open(path, "r", errors="replace") as f:
        for line in f:
            if line.startswith("v "):
                parts = line.split()
                verts.append([float(parts[1]), float(parts[2]), float(parts[3])])
    if not verts:
        raise ValueError(f"OBJ file {path!r} has no vertices")
    return np.asarray(verts)


@dataclass(frozen=True)
class SceneSpans:
    """Per-scene light, floor and background ranges of ``RenderConfig.training()`` (wider than the plain
    ``RenderConfig``'s: ambient 0.4-0.7, diffuse 0.4-0.7, specular 0-0.2, light elevation 25-85 deg, one
    background kind for floor and sky, white light)."""

    light_elevation_deg: tuple = (10.0, 90.0)  # light direction: uniform azimuth, elevation in this range
    ambient: tuple = (0.15, 0.8)               # pybullet TinyRenderer light coefficients
    diffuse: tuple = (0.2, 0.9)
    specular: tuple = (0.0, 0.6)
    shadow_prob: float = 0.5                   # chance of cast shadows
    light_tint: float = 0.15                   # +- per channel of the light colour (warm / cold light)
    separate_sky: bool = True                  # floor texture and background behind it drawn independently

    def __post_init__(self):
        for name in ("light_elevation_deg", "ambient", "diffuse", "specular"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not (0.0 <= lo <= hi):
                raise ValueError(f"SceneSpans.{name} must satisfy 0 <= min <= max, got {getattr(self, name)!r}")
            object.__setattr__(self, name, (lo, hi))
        if self.light_elevation_deg[1] > 90.0:
            raise ValueError(f"SceneSpans.light_elevation_deg must be <= 90, got {self.light_elevation_deg!r}")
        if not (0.0 <= self.shadow_prob <= 1.0) or not (0.0 <= self.light_tint < 1.0):
            raise ValueError(f"SceneSpans: need 0 <= shadow_prob <= 1 and 0 <= light_tint < 1, got "
                             f"{self.shadow_prob}, {self.light_tint}")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


#: The generator's default light / floor / background ranges.
TRAINING_SCENE_SPANS = SceneSpans()


@dataclass
class RenderConfig:
    """Camera and randomisation ranges (angles in degrees, lengths in metres).

    With ``camera_spans=None`` (the default) cameras are drawn by :func:`sample_camera_pose` from
    ``fov_deg``, ``elevation_deg``, ``distance_factor``, ``roll_deg`` and ``target_jitter``; with a
    :class:`.camera_spans.CameraSpans` by :func:`sample_camera` (field of view per view). ``scene_spans=None`` keeps
    the original light / background draws. :meth:`training` sets both to the training spans.
    """

    width: int = 320
    height: int = 240
    fov_deg: float = 50.0
    near: float = 0.01
    far: float = 6.0
    elevation_deg: tuple = (20.0, 80.0)      # camera elevation above the support plane
    distance_factor: tuple = (1.2, 2.0)     # camera distance / distance at which the targets just fill the view
    roll_deg: float = 10.0                  # +- camera roll about its optical axis
    target_jitter: float = 0.15             # look-at jitter as a fraction of the targets' bounding radius
    position_range: float = 0.1             # target x, y uniform in +-position_range on the plane
    plane_size: float = 1.0                 # side of the square support plane; beyond it the "sky" image shows
    texture_size: int = 512                 # pixels of the plane texture
    backgrounds: tuple = ("plain", "noise", "textured")
    background_dir: str | None = None
    camera_spans: CameraSpans | None = None
    scene_spans: SceneSpans | None = None
    distractor_size: tuple = (0.04, 0.10)   # largest extent of each distractor, uniform in this range (metres)
    distractor_near_prob: float = 0.5       # share of distractors placed touching the target (0-5 mm gap)
    distractor_gap: tuple = (0.005, 0.12)   # gap to the target of the other distractors (metres)

    @classmethod
    def training(cls, **overrides) -> "RenderConfig":
        """The generator's default: camera in :data:`.camera_spans.TRAINING_CAMERA_SPANS`, light and background
        in :data:`TRAINING_SCENE_SPANS`; any field can be overridden."""
        kw = {"camera_spans": TRAINING_CAMERA_SPANS, "scene_spans": TRAINING_SCENE_SPANS}
        kw.update(overrides)
        return cls(**kw)

    def __post_init__(self):
        if self.width < 8 or self.height < 8:
            raise ValueError(f"RenderConfig: width and height must be >= 8, got {self.width}x{self.height}")
        if not (0 < self.near < self.far):
            raise ValueError(f"RenderConfig: need 0 < near < far, got near={self.near}, far={self.far}")
        if not (0.0 < self.fov_deg < 180.0):
            raise ValueError(f"RenderConfig: fov_deg must be in (0, 180), got {self.fov_deg}")
        lo, hi = self.elevation_deg
        if not (0.0 < lo <= hi <= 90.0):
            raise ValueError(f"RenderConfig: elevation_deg must satisfy 0 < lo <= hi <= 90, got {self.elevation_deg}")
        lo, hi = self.distance_factor
        if not (0.0 < lo <= hi):
            raise ValueError(f"RenderConfig: distance_factor must satisfy 0 < lo <= hi, got {self.distance_factor}")
        for kind in self.backgrounds:
            if kind not in BACKGROUND_KINDS:
                raise ValueError(f"RenderConfig: unknown background {kind!r}, expected some of {BACKGROUND_KINDS}")
        if not self.backgrounds:
            raise ValueError("RenderConfig: backgrounds must name at least one kind")
        if "images" in self.backgrounds and not self.background_dir:
            raise ValueError("RenderConfig: background 'images' needs background_dir (--background-dir)")
        if self.camera_spans is not None and not isinstance(self.camera_spans, CameraSpans):
            raise ValueError(f"RenderConfig: camera_spans must be a CameraSpans or None, got {self.camera_spans!r}")
        if self.scene_spans is not None and not isinstance(self.scene_spans, SceneSpans):
            raise ValueError(f"RenderConfig: scene_spans must be a SceneSpans or None, got {self.scene_spans!r}")
        lo, hi = self.distractor_size
        if not (0.0 < lo <= hi):
            raise ValueError(f"RenderConfig: distractor_size must satisfy 0 < lo <= hi, got {self.distractor_size}")
        lo, hi = self.distractor_gap
        if not (0.0 <= lo <= hi):
            raise ValueError(f"RenderConfig: distractor_gap must satisfy 0 <= lo <= hi, got {self.distractor_gap}")
        if not (0.0 <= self.distractor_near_prob <= 1.0):
            raise ValueError(f"RenderConfig: distractor_near_prob must be in [0, 1], got {self.distractor_near_prob}")

    def as_args(self) -> dict:
        """Every field, JSON-ready (what the generator's manifest records)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (CameraSpans, SceneSpans)):
                v = v.as_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


@dataclass
class PlacedObject:
    """One object instance of a scene: its spec, world pose of its URDF base-link frame, mask value and role
    (``"target"`` or ``"distractor"``)."""

    spec: ObjectSpec
    T_world_object: np.ndarray
    mask_value: int
    role: str = "target"


@dataclass
class ScenePlan:
    """Everything random about one scene except the camera (shared by all views of the scene)."""

    objects: list
    light_direction: np.ndarray
    light_params: dict
    plane_texture: np.ndarray          # (h, w, 3) uint8 texture of the support plane
    sky: np.ndarray                    # (H, W, 3) uint8 image behind everything (where nothing was hit)
    background_kind: str               # kind of the floor texture (and of the sky unless sky_kind says otherwise)
    center: np.ndarray                 # (3,) centre of the targets' bounding box (what the cameras aim at)
    radius: float                      # bounding-sphere radius of the targets' visual vertices
    extra: dict = field(default_factory=dict)
    sky_kind: str = ""                 # kind of the background image ("" = background_kind)


def _object_vertices_local(spec: ObjectSpec, cache: dict) -> np.ndarray:
    """Visual vertices ``(N, 3)`` of a spec in its base-link frame (scale applied), via a temporary client."""
    key = (spec.path, float(spec.scale))
    if key in cache:
        return cache[key]
    import pybullet as p

    cid = p.connect(p.DIRECT)
    try:
        body = _load_body(p, cid, spec, [0, 0, 0], [0, 0, 0, 1])
        verts = _body_visual_vertices(p, cid, body)
    finally:
        p.disconnect(cid)
    cache[key] = verts
    return verts


def _load_body(p, cid, spec: ObjectSpec, position, quaternion) -> int:
    if spec.path.lower().endswith(".urdf"):
        try:
            return p.loadURDF(spec.path, position, quaternion, globalScaling=spec.scale, physicsClientId=cid)
        except p.error as exc:
            raise ValueError(f"object {spec.name!r}: pybullet could not load URDF {spec.path}: {exc}") from exc
    vis = p.createVisualShape(p.GEOM_MESH, fileName=spec.path, meshScale=[spec.scale] * 3, physicsClientId=cid)
    if vis < 0:
        raise ValueError(f"object {spec.name!r}: pybullet could not load OBJ {spec.path}")
    return p.createMultiBody(baseMass=0, baseVisualShapeIndex=vis, basePosition=position,
                             baseOrientation=quaternion, physicsClientId=cid)


def _link_pose(p, cid, body) -> np.ndarray:
    """World pose of the base link (URDF) frame; pybullet reports the centre-of-mass frame."""
    pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=cid)
    info = p.getDynamicsInfo(body, -1, physicsClientId=cid)
    T_link_com = _pose(info[3], info[4])
    return _pose(pos, orn) @ np.linalg.inv(T_link_com)


def _body_visual_vertices(p, cid, body) -> np.ndarray:
    """Visual-mesh vertices of a body's base link in its link frame; falls back to the AABB corners."""
    T_world_link = _link_pose(p, cid, body)
    pts = []
    for shape in p.getVisualShapeData(body, physicsClientId=cid):
        if shape[1] != -1:
            continue
        fname = shape[4].decode() if isinstance(shape[4], bytes) else shape[4]
        if shape[2] == p.GEOM_MESH and fname.lower().endswith(".obj") and os.path.isfile(fname):
            v = load_obj_vertices(fname) * np.asarray(shape[3])
            T_link_visual = _pose(shape[5], shape[6])
            pts.append(v @ T_link_visual[:3, :3].T + T_link_visual[:3, 3])
    if pts:
        return np.concatenate(pts)
    lo, hi = p.getAABB(body, physicsClientId=cid)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    T_link_world = np.linalg.inv(T_world_link)
    return corners @ T_link_world[:3, :3].T + T_link_world[:3, 3]


def _unit_scale_vertices(spec: ObjectSpec, cache: dict) -> np.ndarray:
    """Vertices of ``spec`` at scale 1 (globalScaling scales every vertex about the base-link origin)."""
    return _object_vertices_local(replace(spec, scale=1.0), cache)


# the six ways to rest a box-like object on one of its bounding-box faces
_TUMBLE_RPY = ((0.0, 0.0, 0.0), (math.pi / 2, 0.0, 0.0), (-math.pi / 2, 0.0, 0.0), (math.pi, 0.0, 0.0),
               (0.0, math.pi / 2, 0.0), (0.0, -math.pi / 2, 0.0))


def _footprint(pts: np.ndarray):
    """xy centre of the bounding box and the radius of the circle around it that holds the box."""
    centre_xy = 0.5 * (pts[:, :2].min(0) + pts[:, :2].max(0))
    return centre_xy, 0.5 * float(np.linalg.norm(pts[:, :2].max(0) - pts[:, :2].min(0)))


def _hull_xy(pts: np.ndarray) -> np.ndarray:
    """Convex hull ``(n, 2)`` of the xy coordinates of ``pts`` (the object's footprint, concavities filled)."""
    import cv2

    return cv2.convexHull(np.ascontiguousarray(pts[:, :2], dtype=np.float32)).reshape(-1, 2).astype(np.float64)


def _separated(h1: np.ndarray, h2: np.ndarray, gap: float) -> bool:
    """True when the convex polygons ``h1`` and ``h2`` are at least ``gap`` apart along one of their edge normals
    (separating axes): never true for overlapping polygons; the gap it certifies is a lower bound."""
    for poly in (h1, h2):
        edges = np.roll(poly, -1, axis=0) - poly
        length = np.linalg.norm(edges, axis=1)
        keep = length > 1e-12
        if not keep.any():
            continue
        normals = np.stack([edges[keep, 1], -edges[keep, 0]], axis=1) / length[keep, None]
        p1, p2 = h1 @ normals.T, h2 @ normals.T
        sep = np.maximum(p2.min(0) - p1.max(0), p1.min(0) - p2.max(0))
        if (sep >= gap).any():
            return True
    return False


def _place_distractors(rng, distractors, config, cache, anchor_xy, anchor_r, target_hulls, first_mask_value):
    """Distractors on the plane around the first target; random size (``distractor_size``), yaw and, for
    ``tumble`` objects, resting face. A share ``distractor_near_prob`` is slid towards the target until their
    footprints (convex hulls) are 0-5 mm apart, so they touch it and occlude it from some cameras; the others stand
    ``distractor_gap`` farther out. Footprints never overlap; a distractor without a free spot after 50 tries is
    left out. Returns the :class:`PlacedObject` s."""
    placed = []
    half_plane = config.plane_size / 2.0
    obstacles = [(h, True) for h in target_hulls]     # (hull, is_target)
    step = 0.002
    for spec in distractors:
        base = _unit_scale_vertices(spec, cache)
        R_up = rpy_matrix(spec.upright_rpy)
        if spec.tumble:
            R_up = rpy_matrix(_TUMBLE_RPY[int(rng.integers(len(_TUMBLE_RPY)))]) @ R_up
        extent = float(np.ptp(base @ R_up.T, axis=0).max())
        scale = rng.uniform(*config.distractor_size) / max(extent, 1e-9)
        local = base * scale
        spec = replace(spec, scale=float(scale))
        for _attempt in range(50):
            R = rpy_matrix((0.0, 0.0, rng.uniform(-math.pi, math.pi))) @ R_up
            pts = local @ R.T
            centre_xy, r_xy = _footprint(pts)
            hull = _hull_xy(pts) - centre_xy
            near = rng.random() < config.distractor_near_prob
            gap = rng.uniform(0.0, 0.005) if near else rng.uniform(*config.distractor_gap)
            angle = rng.uniform(-math.pi, math.pi)
            direction = np.array([math.cos(angle), math.sin(angle)])

            def free(d):
                xy = anchor_xy + d * direction
                if not np.all(np.abs(xy) + r_xy < half_plane):
                    return None
                h = hull + xy
                ok = all(_separated(h, o, gap if is_target else 0.001) for o, is_target in obstacles)
                return xy if ok else None

            d = anchor_r + r_xy + gap            # footprint circles apart: clear of the target
            xy = free(d)
            while near and xy is not None and d > step:
                closer = free(d - step)
                if closer is None:
                    break
                d, xy = d - step, closer
            if xy is not None:
                break
        else:
            continue
        t = np.array([xy[0] - centre_xy[0], xy[1] - centre_xy[1], -pts[:, 2].min()])
        obstacles.append((hull + xy, False))
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = t
        placed.append(PlacedObject(spec, T, first_mask_value + len(placed), "distractor"))
    return placed


def sample_scene(rng: np.random.Generator, specs: list, config: RenderConfig, vertex_cache: dict | None = None,
                 background_files: list | None = None, distractors=()) -> ScenePlan:
    """Random object poses on the plane z = 0 (upright, random yaw, no overlaps), light and background.

    ``specs`` are the targets (mask values 1..n, role "target"; the cameras aim at their bounding sphere);
    ``distractors`` (specs, e.g. from :func:`draw_distractors`) are rescaled to ``config.distractor_size`` and put
    around the first target (mask values n+1.., role "distractor"). Without distractors and ``scene_spans`` the
    random draws are the original ones.
    """
    cache = {} if vertex_cache is None else vertex_cache
    placed, footprints, all_pts = [], [], []
    for i, spec in enumerate(specs):
        local = _object_vertices_local(spec, cache)
        R_up = rpy_matrix(spec.upright_rpy)
        for _attempt in range(50):
            yaw = rng.uniform(-math.pi, math.pi)
            R = rpy_matrix((0.0, 0.0, yaw)) @ R_up
            pts = local @ R.T
            xy = rng.uniform(-config.position_range, config.position_range, size=2)
            centre_xy = 0.5 * (pts[:, :2].min(0) + pts[:, :2].max(0))
            t = np.array([xy[0] - centre_xy[0], xy[1] - centre_xy[1], -pts[:, 2].min()])
            r_xy = 0.5 * float(np.linalg.norm(pts[:, :2].max(0) - pts[:, :2].min(0)))
            if all(np.linalg.norm(xy - c) > r_xy + r for c, r in footprints):
                break
        footprints.append((xy, r_xy))
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = t
        placed.append(PlacedObject(spec, T, i + 1))
        all_pts.append(pts + t)
    pts = np.concatenate(all_pts)
    center = 0.5 * (pts.min(0) + pts.max(0))
    radius = float(np.linalg.norm(pts - center, axis=1).max())
    if len(distractors):
        placed.extend(_place_distractors(rng, list(distractors), config, cache, footprints[0][0], footprints[0][1],
                                         [_hull_xy(p) for p in all_pts], len(placed) + 1))
    spans = config.scene_spans
    if spans is None:
        # light from the upper hemisphere
        az, el = rng.uniform(-math.pi, math.pi), rng.uniform(math.radians(25), math.radians(85))
        light = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        light_params = {
            "ambient": float(rng.uniform(0.4, 0.7)),
            "diffuse": float(rng.uniform(0.4, 0.7)),
            "specular": float(rng.uniform(0.0, 0.2)),
            "shadow": bool(rng.random() < 0.5),
        }
        kind = str(rng.choice(list(config.backgrounds)))
        plane_texture = make_background(kind, config.texture_size, config.texture_size, rng, background_files)
        sky = make_background(kind, config.height, config.width, rng, background_files)
        return ScenePlan(placed, light, light_params, plane_texture, sky, kind, center, radius)
    az = rng.uniform(-math.pi, math.pi)
    el = math.radians(rng.uniform(*spans.light_elevation_deg))
    light = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    light_params = {
        "ambient": float(rng.uniform(*spans.ambient)),
        "diffuse": float(rng.uniform(*spans.diffuse)),
        "specular": float(rng.uniform(*spans.specular)),
        "shadow": bool(rng.random() < spans.shadow_prob),
        "color": [float(c) for c in 1.0 + rng.uniform(-spans.light_tint, spans.light_tint, size=3)],
    }
    kind = str(rng.choice(list(config.backgrounds)))
    sky_kind = str(rng.choice(list(config.backgrounds))) if spans.separate_sky else kind
    plane_texture = make_background(kind, config.texture_size, config.texture_size, rng, background_files)
    sky = make_background(sky_kind, config.height, config.width, rng, background_files)
    return ScenePlan(placed, light, light_params, plane_texture, sky, kind, center, radius, sky_kind=sky_kind)


def sample_camera_pose(rng: np.random.Generator, scene: ScenePlan, config: RenderConfig) -> np.ndarray:
    """``T_world_camera`` on a hemisphere over the targets: random azimuth, elevation, distance, roll (the plain
    ``RenderConfig`` ranges, field of view ``config.fov_deg``; ``camera_spans`` is not used here)."""
    half_fov = math.radians(config.fov_deg) / 2.0
    half_fov_x = math.atan(math.tan(half_fov) * config.width / config.height)
    fit_distance = scene.radius / math.sin(min(half_fov, half_fov_x))
    distance = fit_distance * rng.uniform(*config.distance_factor)
    az = rng.uniform(-math.pi, math.pi)
    el = math.radians(rng.uniform(*config.elevation_deg))
    direction = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    target = scene.center + rng.uniform(-1, 1, size=3) * config.target_jitter * scene.radius
    roll = math.radians(rng.uniform(-config.roll_deg, config.roll_deg))
    return look_at(target + distance * direction, target, roll=roll)


def sample_camera(rng: np.random.Generator, scene: ScenePlan, config: RenderConfig):
    """``(T_world_camera, fov_deg)`` of one view.

    With ``config.camera_spans`` (:class:`.camera_spans.CameraSpans`): vertical field of view, distance factor
    (log-uniform), azimuth, elevation, roll and the target's offset from the optical axis are drawn inside the
    spans, so :func:`.camera_spans.camera_parameters` of the result returns exactly the drawn values. Without:
    :func:`sample_camera_pose` and ``config.fov_deg``.
    """
    spans = config.camera_spans
    if spans is None:
        return sample_camera_pose(rng, scene, config), float(config.fov_deg)
    fov = float(rng.uniform(*spans.fov_deg))
    lo, hi = spans.distance_factor
    factor = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    distance = fit_distance(scene.radius, fov, config.width, config.height) * factor
    az = rng.uniform(-math.pi, math.pi)
    el = math.radians(rng.uniform(*spans.elevation_deg))
    roll = math.radians(rng.uniform(-spans.roll_deg, spans.roll_deg))
    offset = rng.uniform(-spans.look_at_offset, spans.look_at_offset, size=2) * scene.radius
    direction = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    T = look_at(scene.center + distance * direction, scene.center, roll=roll)
    # slide the camera in its image plane: the target centre sits at (offset_x, offset_y, distance) in its frame
    T[:3, 3] -= T[:3, :2] @ offset
    return T, fov


@dataclass
class RenderedView:
    """One rendered view. ``mask`` holds 0 for background and ``PlacedObject.mask_value`` per object."""

    rgb: np.ndarray            # (H, W, 3) uint8
    depth: np.ndarray          # (H, W) float32 metres, 0 = nothing hit
    mask: np.ndarray           # (H, W) uint8
    K: np.ndarray              # (3, 3) float64
    T_world_camera: np.ndarray  # (4, 4) float64
    object_poses: list         # [(name, mask_value, T_world_object (4, 4))]


class SceneRenderer:
    """One pybullet DIRECT client that builds a :class:`ScenePlan` and renders it with the CPU renderer."""

    def __init__(self, config: RenderConfig):
        import pybullet as p

        self._p = p
        self.config = config
        self.cid = p.connect(p.DIRECT)
        self._tmp = tempfile.TemporaryDirectory(prefix="ddg_textures_")
        self._scene = None
        self._bodies = []
        self._plane = None
        self._texture_count = 0

    def close(self):
        if self.cid is not None:
            self._p.disconnect(self.cid)
            self.cid = None
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_scene(self, scene: ScenePlan) -> None:
        """Reset the simulation and build the scene (plane with its texture, objects at their poses)."""
        import cv2

        p, cid = self._p, self.cid
        p.resetSimulation(physicsClientId=cid)
        self._plane = self._make_plane()
        tex_path = os.path.join(self._tmp.name, f"tex_{self._texture_count}.png")
        self._texture_count += 1
        cv2.imwrite(tex_path, np.ascontiguousarray(scene.plane_texture[:, :, ::-1]))
        tex = p.loadTexture(tex_path, physicsClientId=cid)
        p.changeVisualShape(self._plane, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=cid)
        self._bodies = []
        for obj in scene.objects:
            body = _load_body(p, cid, obj.spec, [0, 0, 0], [0, 0, 0, 1])
            # place the base-link frame at T_world_object: pybullet poses the centre-of-mass frame
            info = p.getDynamicsInfo(body, -1, physicsClientId=cid)
            T_com = obj.T_world_object @ _pose(info[3], info[4])
            p.resetBasePositionAndOrientation(body, T_com[:3, 3].tolist(),
                                              list(matrix_to_quaternion_np(T_com[:3, :3])), physicsClientId=cid)
            self._bodies.append((body, obj))
        self._scene = scene

    def _make_plane(self) -> int:
        """A square textured support plane at z = 0 (side ``plane_size``), texture mapped once over it."""
        p, cid, h = self._p, self.cid, self.config.plane_size / 2.0
        vis = p.createVisualShape(
            p.GEOM_MESH, vertices=[[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], indices=[0, 1, 2, 0, 2, 3],
            uvs=[[0, 0], [1, 0], [1, 1], [0, 1]], normals=[[0, 0, 1]] * 4, physicsClientId=cid)
        return p.createMultiBody(baseMass=0, baseVisualShapeIndex=vis, physicsClientId=cid)

    def render(self, T_world_camera: np.ndarray, fov_deg: float | None = None) -> RenderedView:
        """Render the current scene from ``T_world_camera`` (optical frame) with vertical field of view ``fov_deg``
        (default ``config.fov_deg``)."""
        if self._scene is None:
            raise RuntimeError("SceneRenderer.render: call set_scene first")
        p, cid, cfg, scene = self._p, self.cid, self.config, self._scene
        fov = float(cfg.fov_deg if fov_deg is None else fov_deg)
        proj = p.computeProjectionMatrixFOV(fov, cfg.width / cfg.height, cfg.near, cfg.far)
        lp = scene.light_params
        light = {"lightColor": lp["color"]} if "color" in lp else {}
        _, _, rgba, gl_depth, seg = p.getCameraImage(
            cfg.width, cfg.height, gl_view_matrix(T_world_camera), proj, renderer=p.ER_TINY_RENDERER,
            lightDirection=(scene.light_direction * 10.0).tolist(), shadow=int(lp["shadow"]),
            lightAmbientCoeff=lp["ambient"], lightDiffuseCoeff=lp["diffuse"], lightSpecularCoeff=lp["specular"],
            physicsClientId=cid, **light)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(cfg.height, cfg.width, 4)[:, :, :3].copy()
        depth = depth_from_gl_buffer(np.asarray(gl_depth).reshape(cfg.height, cfg.width), cfg.near, cfg.far)
        seg = np.asarray(seg).reshape(cfg.height, cfg.width)
        mask = np.zeros(seg.shape, dtype=np.uint8)
        poses = []
        for body, obj in self._bodies:
            mask[seg == body] = obj.mask_value
            poses.append((obj.spec.name, obj.mask_value, _link_pose(p, cid, body)))
        nothing = (seg < 0) | (depth <= 0)
        rgb[nothing] = scene.sky[nothing]
        depth[nothing] = 0.0
        K = intrinsics_from_fov(fov, cfg.width, cfg.height)
        return RenderedView(rgb, depth, mask, K, np.asarray(T_world_camera, dtype=np.float64), poses)
