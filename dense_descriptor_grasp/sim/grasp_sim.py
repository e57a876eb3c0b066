"""Simulated grasp judge: a Franka Panda hand picks an object in pybullet (DIRECT mode, ROS-free).

What is simulated
-----------------
* A ground plane (the table top, z = 0 in the world), an object from ``pybullet_data`` (default the duck,
  ``duck_vhacd.urdf``: convex-decomposed collision shape, textured visual mesh) resting upright at a given pose,
  and the **Franka Panda hand** (``franka_panda/panda.urdf`` from ``pybullet_data``: its ``panda_hand``,
  both fingers with their prismatic joints, limits and contact parameters, and ``panda_grasptarget``,
  extracted verbatim into a hand-only URDF at run time).
* The grasp: the hand starts at a pre-grasp pose ``pregrasp_offset`` behind the grasp along the approach,
  moves along the approach (a guarded move that stops on contact), closes both fingers with a force limit,
  lifts by ``lift_height`` straight up, holds, and is judged.

Why a floating hand and not the 7-joint arm with inverse kinematics
-------------------------------------------------------------------
The benchmark judges *grasp poses* predicted by the perception pipeline. With the full arm, a share of the
failures would come from IK (joint limits, singularities, self-collision, the arm hitting the table for
side approaches, the reach envelope) and would depend on where the robot base happens to stand, which says
nothing about the prediction. So the hand is a free rigid body driven by a pybullet fixed constraint whose
target moves along a straight Cartesian path at a bounded speed and with a bounded force (``hand_max_force``):
it is *kinematically commanded but physically simulated* -- it still collides, gets blocked by the object and
the table, and carries the object only through finger contacts and friction. This is the standard
"floating gripper" of grasp-learning simulators. A pose that no hand could reach without starting inside the
object or under the table is rejected up front (``reason="pre-grasp pose in collision"``).

Conventions
-----------
* Poses are 4x4 matrices ``T_a_b`` (points in b -> a), quaternions ``(x, y, z, w)``, metres.
* The **object frame** is the object's URDF link frame (not pybullet's centre-of-mass frame; the conversion
  uses the URDF's inertial origin). For the duck, +y is the duck's up, the beak points to -x.
* The **grasp frame** is the Panda's ``panda_grasptarget`` frame: origin between the fingertips, +z the approach
  direction (out of the palm), +y the finger closing axis, +x = y cross z.
* A predicted grasp point is a point *on the object's surface* (what a depth camera sees); the fingertip
  centre is driven ``grasp_depth`` further along the approach so the fingers close around material.

Physics parameters (``SimParams``; defaults chosen so that a good grasp succeeds reliably)
------------------------------------------------------------------------------------------
Time step 1/240 s with 100 solver iterations. Fingers: lateral friction 1.0 (URDF), closing speed 0.1 m/s,
force limit 40 N per finger (the real Panda hand grips with 70 N continuous), coupled by a gear constraint
like the real hand's single motor. Object: the URDF mass (duck 0.1 kg), lateral friction 1.0, spinning
friction 0.01 (without it a two-point pinch lets the object pivot and slip around the finger axis). The hand
constraint force is limited to 200 N (the hand + a 0.1 kg object weigh ~9 N), the approach stops when contact
forces on the hand exceed 20 N. With ``seed``-driven randomisation (``randomize_physics=True``) the object
mass and both frictions are scaled by a factor drawn uniformly from ``1 +- physics_jitter``; a fresh pybullet
client per grasp makes a run bit-for-bit reproducible for a seed.

Length (~530 lines, over the package's ~400): one idea, the judged grasp; ~60 lines are this docstring, ~250 the
``GraspScene`` sequence (approach, close, lift, hold, judge) that only makes sense in one piece. The objects are the
registry's (``objects.py``), pose and centre-of-mass helpers are ``sim/bodies.py``, camera maths
``geometry/rendering.py``.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pybullet as pb
import pybullet_data

from dense_descriptor_grasp.geometry.rendering import depth_from_gl_buffer, gl_projection_matrix, gl_view_matrix
from dense_descriptor_grasp.objects import part_world, resolve_object, top_down_grasp_rotation

from .bodies import (TABLE_Z, check_pose, com_offset, link_pose, pose_from_matrix, pose_matrix,
                     quaternion_from_rotation, resting_geometry, set_link_pose)

__all__ = [
    "SimParams",
    "GraspResult",
    "GraspScene",
    "execute_grasp",
    "random_object_pose",
    "reference_grasp_world",
    "pose_matrix",
    "pose_from_matrix",
    "grasp_pose_in_world",
    "grasp_matrix_in_world",
    "rotation_error_deg",
    "approach_error_deg",
]

# --------------------------------------------------------------------------------------------- poses
def grasp_matrix_in_world(T_world_camera, T_camera_grasp) -> np.ndarray:
    """(4, 4) ``T_world_grasp = T_world_camera @ T_camera_grasp`` (camera = optical frame, z forward)."""
    return check_pose(T_world_camera, "T_world_camera") @ check_pose(T_camera_grasp, "T_camera_grasp")


def grasp_pose_in_world(T_world_camera, position_camera, quaternion_camera) -> tuple[np.ndarray, np.ndarray]:
    """A camera-frame grasp (as in the grasp node's PoseStamped) expressed in the world.

    position_camera (3,) metres and quaternion_camera (4,) (x, y, z, w) in the camera optical frame;
    returns ``(position_world (3,), quaternion_world (4,))``.
    """
    return pose_from_matrix(grasp_matrix_in_world(T_world_camera, pose_matrix(position_camera, quaternion_camera)))


def _symmetric_angle(R_err: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R_err) - 1) / 2, -1.0, 1.0))))


def rotation_error_deg(R_pred, R_true, gripper_symmetric: bool = True) -> float:
    """Angle (degrees) of ``R_pred^T R_true``; with ``gripper_symmetric`` the smaller of that and the error to
    ``R_true`` turned by 180 degrees about its approach (z) axis -- a parallel-jaw grasp and its mirror image
    are the same grasp."""
    R_pred = np.asarray(R_pred, dtype=np.float64)[:3, :3]
    R_true = np.asarray(R_true, dtype=np.float64)[:3, :3]
    err = _symmetric_angle(R_pred.T @ R_true)
    if gripper_symmetric:
        flip = np.diag([-1.0, -1.0, 1.0])
        err = min(err, _symmetric_angle(R_pred.T @ R_true @ flip))
    return err


def approach_error_deg(R_pred, R_true) -> float:
    """Angle (degrees) between the approach (z) axes of two grasp rotations."""
    a = np.asarray(R_pred, dtype=np.float64)[:3, 2]
    b = np.asarray(R_true, dtype=np.float64)[:3, 2]
    return float(np.degrees(np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))))


# ------------------------------------------------------------------------------------------- objects
# The objects, their parts and grasp rotations are the registry's (dense_descriptor_grasp/objects.py).
def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def reference_grasp_world(object_name: str, T_world_object, keypoint: str | None = None,
                          scale: float | None = None) -> np.ndarray:
    """(4, 4) ``T_world_grasp`` of the reference grasp at a part: position on the part, orientation the part's
    ``R_object_grasp`` (``ObjectSpec.grasp_rotations``) carried by the object pose (top-down, closing along world
    y in the object's frame, when the part has none). This is the ground truth for the rotation error of 6-DoF
    grasps."""
    spec = resolve_object(object_name)
    keypoint = keypoint or spec.default_part
    T = check_pose(T_world_object, "T_world_object")
    if keypoint in spec.grasp_rotations:
        R_object_grasp = np.asarray(spec.grasp_rotations[keypoint])
    else:
        R_up = spec.upright
        R_object_grasp = np.asarray(top_down_grasp_rotation(R_up.T @ np.array([0.0, 1.0, 0.0]), R_up))
    G = np.eye(4)
    G[:3, :3] = T[:3, :3] @ R_object_grasp
    G[:3, 3] = part_world(spec, T, keypoint, scale)
    return G


def random_object_pose(rng: np.random.Generator, object_name: str = "duck", scale: float | None = None,
                       x_range=(-0.1, 0.1), y_range=(-0.1, 0.1), yaw_range=(-math.pi, math.pi)) -> np.ndarray:
    """(4, 4) ``T_world_object`` of the object resting upright on the table at a random position and yaw
    (uniform in the given ranges, metres / radians), drawn from ``rng`` (a ``numpy.random.Generator``).
    The default +-0.1 m matches the data generator's ``position_range`` so the rendered table is under it."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    spec = resolve_object(object_name)
    scale = spec.scale if scale is None else float(scale)
    z0, _ = resting_geometry(spec.path, scale, tuple(spec.upright_rpy))
    x, y = rng.uniform(*x_range), rng.uniform(*y_range)
    yaw = rng.uniform(*yaw_range)
    T = np.eye(4)
    T[:3, :3] = _rot_z(yaw) @ spec.upright
    T[:3, 3] = (x, y, z0 + 1e-4)
    return T


# ------------------------------------------------------------------------------------------ the hand
HAND_LINKS = ("panda_hand", "panda_leftfinger", "panda_rightfinger", "panda_grasptarget")


@functools.lru_cache(maxsize=1)
def panda_hand_urdf() -> str:
    """Path of a hand-only URDF cut out of ``pybullet_data/franka_panda/panda.urdf`` (links, joints, limits,
    inertias and contact parameters unchanged; mesh paths made absolute), written once per process."""
    src_dir = os.path.join(pybullet_data.getDataPath(), "franka_panda")
    tree = ET.parse(os.path.join(src_dir, "panda.urdf"))
    robot = tree.getroot()
    for element in list(robot):
        if element.tag == "link" and element.get("name") not in HAND_LINKS:
            robot.remove(element)
        elif element.tag == "joint":
            parent, child = element.find("parent").get("link"), element.find("child").get("link")
            if parent not in HAND_LINKS or child not in HAND_LINKS:
                robot.remove(element)
    for mesh in robot.iter("mesh"):
        mesh.set("filename", mesh.get("filename").replace("package://", src_dir + "/"))
    robot.set("name", "panda_hand")
    out_dir = tempfile.mkdtemp(prefix="panda_hand_")
    path = os.path.join(out_dir, "panda_hand.urdf")
    tmp = path + ".tmp"
    tree.write(tmp)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------- params
@dataclass(frozen=True)
class SimParams:
    """Physics and motion parameters of one grasp (SI units). See the module docstring for the choices."""

    time_step: float = 1.0 / 240.0
    solver_iterations: int = 100
    settle_time: float = 0.25          # s the object rests before the grasp
    pregrasp_offset: float = 0.10      # m behind the grasp along the approach
    grasp_depth: float = 0.02          # m the fingertip centre goes past the predicted surface point
    approach_speed: float = 0.25       # m/s
    guard_force: float = 20.0          # N of contact force on the hand that stops the approach
    hand_max_force: float = 200.0      # N of the constraint that drives the hand
    finger_force: float = 40.0         # N per finger
    finger_speed: float = 0.10         # m/s closing speed per finger
    close_time: float = 0.5            # s
    lift_height: float = 0.10          # m
    lift_speed: float = 0.20           # m/s
    hold_time: float = 0.5             # s
    finger_friction: float = 1.0
    object_friction: float = 1.0
    object_spinning_friction: float = 0.01
    object_mass: float | None = None   # kg; None = the URDF's mass
    randomize_physics: bool = True
    physics_jitter: float = 0.1        # +- fraction of mass / friction randomisation

    def __post_init__(self):
        for name in ("time_step", "pregrasp_offset", "approach_speed", "guard_force", "hand_max_force",
                     "finger_force", "finger_speed", "close_time", "lift_height", "lift_speed"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SimParams.{name} must be a positive number, got {value!r}")
        for name in ("settle_time", "hold_time", "grasp_depth", "finger_friction", "object_friction",
                     "object_spinning_friction"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"SimParams.{name} must be >= 0, got {value!r}")
        if not 0 <= self.physics_jitter < 1:
            raise ValueError(f"SimParams.physics_jitter must be in [0, 1), got {self.physics_jitter!r}")
        if self.object_mass is not None and not self.object_mass > 0:
            raise ValueError(f"SimParams.object_mass must be > 0 kg or None, got {self.object_mass!r}")

    def steps(self, seconds: float) -> int:
        return max(1, int(round(seconds / self.time_step)))


@dataclass
class GraspResult:
    """Outcome of one simulated grasp.

    success: lifted (object z rose by more than half the lift) and held (contact with both fingers at the end).
    lift_height_m: rise of the object's centre of mass from before the grasp to the end of the hold.
    reason: "lifted and held" on success, otherwise why it failed.
    """

    success: bool
    lift_height_m: float
    reason: str
    contact_left: bool = False
    contact_right: bool = False
    finger_opening_m: float = 0.0        # distance between the fingers at the end
    approach_stopped_m: float = 0.0      # how far short of the grasp pose the guarded approach stopped
    object_moved_m: float = 0.0          # how far the object was pushed before the fingers closed
    steps: int = 0
    physics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- scene
class GraspScene:
    """A pybullet DIRECT world: the table plane and one object at ``T_world_object`` (settled), then a hand.

    Use as a context manager (``with GraspScene(...) as scene:``); ``render`` the scene for the perception
    pipeline, then ``execute_grasp`` once (the grasp changes the world).
    """

    def __init__(self, object_name: str = "duck", T_world_object=None, scale: float | None = None,
                 params: SimParams | None = None, seed: int = 0):
        self.spec = resolve_object(object_name)
        self.scale = self.spec.scale if scale is None else float(scale)
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.params = params or SimParams()
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        if T_world_object is None:
            T_world_object = random_object_pose(self.rng, object_name, self.scale)
        self.T_world_object_given = check_pose(T_world_object, "T_world_object")
        self.client = pb.connect(pb.DIRECT)
        self._grasped = False
        self.hand = None
        try:
            self._build()
        except Exception:
            self.close()
            raise

    # -- setup
    def _build(self) -> None:
        c, prm = self.client, self.params
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setPhysicsEngineParameter(fixedTimeStep=prm.time_step, numSolverIterations=prm.solver_iterations,
                                     deterministicOverlappingPairs=1, physicsClientId=c)
        self.plane = pb.loadURDF("plane.urdf", [0, 0, TABLE_Z], physicsClientId=c)
        self.body = pb.loadURDF(self.spec.path, globalScaling=self.scale, physicsClientId=c)
        self.T_object_com = com_offset(self.body, c)
        set_link_pose(self.body, self.T_world_object_given, self.T_object_com, c)
        mass = prm.object_mass if prm.object_mass is not None else pb.getDynamicsInfo(self.body, -1, physicsClientId=c)[0]
        jitter = (lambda: 1.0 + self.rng.uniform(-prm.physics_jitter, prm.physics_jitter)) \
            if prm.randomize_physics else (lambda: 1.0)
        self.physics = {
            "object_mass_kg": float(mass * jitter()),
            "object_friction": float(prm.object_friction * jitter()),
            "finger_friction": float(prm.finger_friction * jitter()),
            "object_spinning_friction": float(prm.object_spinning_friction),
        }
        pb.changeDynamics(self.body, -1, mass=self.physics["object_mass_kg"],
                          lateralFriction=self.physics["object_friction"],
                          spinningFriction=self.physics["object_spinning_friction"], rollingFriction=1e-4,
                          physicsClientId=c)
        pb.changeDynamics(self.plane, -1, lateralFriction=1.0, physicsClientId=c)
        for _ in range(prm.steps(prm.settle_time)):
            pb.stepSimulation(physicsClientId=c)
        self.settle_shift_m = float(np.linalg.norm(self.object_pose()[:3, 3] - self.T_world_object_given[:3, 3]))

    def object_pose(self) -> np.ndarray:
        """(4, 4) current ``T_world_object`` (URDF frame)."""
        return link_pose(self.body, self.T_object_com, self.client)

    def keypoint_world(self, keypoint: str | None = None) -> np.ndarray:
        """World position (3,) of a named part at the object's *current* pose."""
        return part_world(self.spec, self.object_pose(), keypoint, self.scale)

    def render(self, T_world_camera, K, width: int, height: int, near: float = 0.05, far: float = 5.0):
        """Render RGB-D + mask with pybullet's CPU renderer.

        Returns ``rgb (H, W, 3) uint8``, ``depth (H, W) float32`` metres along the optical axis (0 where
        nothing was hit), ``mask (H, W) bool`` object pixels. Pixel centres are at integer coordinates, so
        ``project(points, K)`` lands on the pixel that shows the point.
        """
        T_wc = check_pose(T_world_camera, "T_world_camera")
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"K must be a (3, 3) pinhole matrix with fx, fy > 0, got {K.tolist()}")
        W, H = int(width), int(height)
        _, _, rgba, zbuf, seg = pb.getCameraImage(
            W, H, viewMatrix=gl_view_matrix(T_wc), projectionMatrix=gl_projection_matrix(K, W, H, near, far),
            renderer=pb.ER_TINY_RENDERER, shadow=0, physicsClientId=self.client)
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(H, W, 4)
        seg = np.asarray(seg).reshape(H, W)
        depth = depth_from_gl_buffer(np.asarray(zbuf, dtype=np.float64).reshape(H, W), near, far, far_tolerance=0.0)
        depth[seg < 0] = 0.0
        return rgba[..., :3].copy(), depth, seg == self.body

    # -- grasp
    def _load_hand(self, T_world_grasp: np.ndarray) -> None:
        c = self.client
        self.hand = pb.loadURDF(panda_hand_urdf(), useFixedBase=False, physicsClientId=c)
        names = {pb.getJointInfo(self.hand, j, physicsClientId=c)[12].decode(): j
                 for j in range(pb.getNumJoints(self.hand, physicsClientId=c))}
        self.left, self.right, target = names["panda_leftfinger"], names["panda_rightfinger"], names["panda_grasptarget"]
        # T_hand_com from the inertial origin; the grasptarget joint's frame is given in the parent's COM frame
        self.T_hand_com = com_offset(self.hand, c)
        info = pb.getJointInfo(self.hand, target, physicsClientId=c)
        self.T_hand_grasp = self.T_hand_com @ pose_matrix(info[14], info[15])
        self.grasp_link = target
        for j in (self.left, self.right):
            pb.resetJointState(self.hand, j, 0.04, physicsClientId=c)
            pb.changeDynamics(self.hand, j, lateralFriction=self.physics["finger_friction"], physicsClientId=c)
        self._set_hand(T_world_grasp, reset=True)
        gear = pb.createConstraint(self.hand, self.left, self.hand, self.right, jointType=pb.JOINT_GEAR,
                                   jointAxis=[1, 0, 0], parentFramePosition=[0, 0, 0], childFramePosition=[0, 0, 0],
                                   physicsClientId=c)
        pb.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=c)
        pos, quat = pose_from_matrix(self._hand_com_pose(T_world_grasp))
        self.hand_constraint = pb.createConstraint(
            self.hand, -1, -1, -1, pb.JOINT_FIXED, [0, 0, 0], [0, 0, 0], pos.tolist(), childFrameOrientation=quat.tolist(),
            physicsClientId=c)
        pb.changeConstraint(self.hand_constraint, maxForce=self.params.hand_max_force, physicsClientId=c)
        self._fingers(velocity=0.0)

    def _hand_com_pose(self, T_world_grasp: np.ndarray) -> np.ndarray:
        return T_world_grasp @ np.linalg.inv(self.T_hand_grasp) @ self.T_hand_com

    def _set_hand(self, T_world_grasp: np.ndarray, reset: bool = False) -> None:
        T = self._hand_com_pose(T_world_grasp)
        pos = T[:3, 3]
        # the orientation is constant along the approach and the lift: convert it once
        if getattr(self, "_cached_R", None) is None or not np.array_equal(T[:3, :3], self._cached_R):
            self._cached_R, self._cached_q = T[:3, :3].copy(), quaternion_from_rotation(T[:3, :3])
        quat = self._cached_q
        if reset:
            pb.resetBasePositionAndOrientation(self.hand, pos.tolist(), quat.tolist(), physicsClientId=self.client)
        else:
            pb.changeConstraint(self.hand_constraint, pos.tolist(), quat.tolist(),
                                maxForce=self.params.hand_max_force, physicsClientId=self.client)

    def _grasp_frame(self) -> np.ndarray:
        pos, quat = pb.getBasePositionAndOrientation(self.hand, physicsClientId=self.client)
        return pose_matrix(pos, quat) @ np.linalg.inv(self.T_hand_com) @ self.T_hand_grasp

    def _fingers(self, velocity: float) -> None:
        for j in (self.left, self.right):
            pb.setJointMotorControl2(self.hand, j, pb.VELOCITY_CONTROL, targetVelocity=velocity,
                                     force=self.params.finger_force, physicsClientId=self.client)

    def _contact_force(self, other: int) -> float:
        return float(sum(pt[9] for pt in pb.getContactPoints(self.hand, other, physicsClientId=self.client)))

    def _touches(self, link: int) -> bool:
        return len(pb.getContactPoints(self.hand, self.body, linkIndexA=link, physicsClientId=self.client)) > 0

    def _in_collision(self, tolerance: float = 1e-3) -> bool:
        """The hand penetrates the object or the table by more than ``tolerance`` metres."""
        for other in (self.body, self.plane):
            points = pb.getClosestPoints(self.hand, other, distance=0.0, physicsClientId=self.client)
            if points and min(pt[8] for pt in points) < -tolerance:
                return True
        return False

    def execute_grasp(self, grasp_position_world, grasp_quaternion_world) -> GraspResult:
        """Approach, close, lift, hold and judge a grasp at a world pose (position (3,) of the surface point,
        quaternion (4,) x, y, z, w of the grasp frame, approach = its +z axis)."""
        if self._grasped:
            raise RuntimeError("GraspScene.execute_grasp runs once per scene: make a new GraspScene")
        self._grasped = True
        prm, c = self.params, self.client
        position = np.asarray(grasp_position_world, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise ValueError(f"grasp_position_world must be a finite 3-vector (metres), got {position.tolist()}")
        T_goal = pose_matrix(position, grasp_quaternion_world)
        approach = T_goal[:3, 2]
        T_goal[:3, 3] = position + prm.grasp_depth * approach
        T_pre = T_goal.copy()
        T_pre[:3, 3] -= (prm.pregrasp_offset + prm.grasp_depth) * approach
        self._load_hand(T_pre)
        steps = 0
        result = functools.partial(GraspResult, physics=dict(self.physics))
        if self._in_collision():
            return result(False, 0.0, "pre-grasp pose in collision (inside the object or below the table)")
        T_obj0 = self.object_pose()
        com_z0 = pb.getBasePositionAndOrientation(self.body, physicsClientId=c)[0][2]

        # 1. guarded approach along the approach axis
        distance = prm.pregrasp_offset + prm.grasp_depth
        n = prm.steps(distance / prm.approach_speed)
        reached = 0.0
        for i in range(1, n + 1):
            T = T_pre.copy()
            T[:3, 3] += (i / n) * distance * approach
            self._set_hand(T)
            pb.stepSimulation(physicsClientId=c)
            steps += 1
            reached = i / n * distance
            if self._contact_force(self.body) + self._contact_force(self.plane) > prm.guard_force:
                T_now = self._grasp_frame()
                self._set_hand(T_now)  # stop where the hand is
                break
        stopped_short = float(np.linalg.norm(self._grasp_frame()[:3, 3] - T_goal[:3, 3]))
        for _ in range(prm.steps(0.1)):  # let the hand come to rest
            pb.stepSimulation(physicsClientId=c)
            steps += 1

        # 2. close with a force limit
        self._fingers(velocity=-prm.finger_speed)
        for _ in range(prm.steps(prm.close_time)):
            pb.stepSimulation(physicsClientId=c)
            steps += 1
        moved = float(np.linalg.norm(self.object_pose()[:3, 3] - T_obj0[:3, 3]))

        # 3. lift straight up, 4. hold
        T_start = self._grasp_frame()
        T_start[:3, :3] = T_goal[:3, :3]
        n = prm.steps(prm.lift_height / prm.lift_speed)
        for i in range(1, n + 1):
            T = T_start.copy()
            T[2, 3] += (i / n) * prm.lift_height
            self._set_hand(T)
            pb.stepSimulation(physicsClientId=c)
            steps += 1
        for _ in range(prm.steps(prm.hold_time)):
            pb.stepSimulation(physicsClientId=c)
            steps += 1

        com_z1 = pb.getBasePositionAndOrientation(self.body, physicsClientId=c)[0][2]
        lift = float(com_z1 - com_z0)
        left, right = self._touches(self.left), self._touches(self.right)
        opening = float(sum(pb.getJointState(self.hand, j, physicsClientId=c)[0] for j in (self.left, self.right)))
        lifted = lift > 0.5 * prm.lift_height
        if lifted and left and right:
            reason = "lifted and held"
        elif not (left or right):
            reason = "no finger touches the object" + ("" if opening > 1e-3 else " (fingers closed on nothing)")
        elif not (left and right):
            reason = f"only the {'left' if left else 'right'} finger touches the object"
        else:
            reason = f"object not lifted (rose {lift * 1000:.0f} mm of {prm.lift_height * 1000:.0f} mm)"
        return result(lifted and left and right, lift, reason, left, right, opening, stopped_short, moved, steps)

    # -- lifetime
    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            try:
                pb.disconnect(self.client)
            except Exception:  # already disconnected, or the interpreter is shutting down
                pass
            self.client = None

    def __enter__(self) -> "GraspScene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def execute_grasp(object_name: str, T_world_object, grasp_position_world, grasp_quaternion_world, seed: int = 0,
                  scale: float | None = None, params: SimParams | None = None, **param_overrides) -> GraspResult:
    """Simulate one grasp in a fresh world and judge it.

    object_name: a registered object (``duck``...) or a URDF path in pybullet_data.
    T_world_object: (4, 4) object (URDF frame) pose, resting on the table z = 0 (see ``random_object_pose``).
    grasp_position_world: (3,) the grasp point on the object's surface, metres.
    grasp_quaternion_world: (4,) (x, y, z, w) of the grasp frame: +z = approach, +y = finger closing axis.
    seed: drives the physics randomisation; the same seed gives the same result bit for bit.
    param_overrides: any ``SimParams`` field (e.g. ``lift_height=0.05``).
    """
    params = replace(params or SimParams(), **param_overrides)
    with GraspScene(object_name, T_world_object, scale=scale, params=params, seed=seed) as scene:
        result = scene.execute_grasp(grasp_position_world, grasp_quaternion_world)
    return result
