"""Camera poses without a robot: RGB-D odometry, loop closures and pose-graph optimisation (open3d).

What open3d's reconstruction system does for one fragment (``examples/python/reconstruction_system/
make_fragments.py``: odometry between neighbouring frames, loop closures between keyframes, a pose graph optimised
with Levenberg-Marquardt and a line process that prunes wrong edges), for a capture of a few dozen keyframes:

1. **Chain.** For each frame ``k`` the dense RGB-D odometry (Steinbruecker 2011 / Park 2017, the hybrid
   photometric + geometric Jacobian) from ``k-1`` to ``k`` is run from two starting guesses -- the previous step
   repeated (constant velocity: what an orbit does) and no motion; if neither works, a third from ORB features
   matched between the two images (RANSAC on their 3-D points) -- and the result whose views agree best is kept
   when they agree well enough: *fitness* (share of ``k-1``'s pixels with depth that land on a depth of ``k``
   within ``max_correspondence_distance``) at least ``min_fitness`` and, where the surfaces have texture, the
   intensities there correlated (NCC at least ``min_ncc``: geometry alone registers a table onto any other part of
   the table). Otherwise the step is recovered from ``k-2`` (odometry ``k-2 -> k``), then by
   point-to-plane ICP on the two point clouds; if all fail, :class:`PoseEstimationError` names the frame pair.
2. **More edges.** Odometry from ``k-2 .. k-neighbours`` to ``k``, started from the chain; kept (as *uncertain*
   edges the optimiser may prune) when it succeeds, reaches ``min_fitness`` and agrees with the chain within
   ``max_edge_disagreement``.
3. **Loop closures.** Pairs ``(i, j)`` farther apart than ``neighbours`` in the sequence whose chained cameras look
   the same way (optical axes within ``loop_max_angle_deg``, centres within ``loop_max_distance``) -- on a closed
   orbit, the last frames and the first -- are registered by odometry started from the chain and accepted when
   the odometry succeeds, the fitness reaches ``loop_min_fitness`` and the NCC ``min_ncc``.
4. **Pose graph.** Nodes = chained poses, edges = all of the above with the odometry's 6x6 information matrices;
   ``global_optimization`` (LM, line process) with the first node fixed.

The world is the first camera (``T_world_camera[0] = I``), unless the first frame carries a known
``T_world_camera`` (``PoseConfig.align_to_first``): then every pose is moved so that the first one equals it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

from .frames import Frame

__all__ = ["PoseConfig", "PoseEdge", "PoseResult", "PoseEstimationError", "estimate_poses", "pose_errors",
           "relative_pose_error", "align_to_first"]


class PoseEstimationError(RuntimeError):
    """Odometry could not link two frames (every recovery failed); the message names the pair."""


@dataclass
class PoseConfig:
    """Settings of :func:`estimate_poses` (lengths in metres, angles in degrees).

    Attributes:
        depth_max: depth beyond this is ignored by the odometry and the point clouds.
        depth_diff_max: odometry: largest depth difference of a correspondence (open3d's default 0.03).
        iterations: odometry iterations per pyramid level, coarse to fine.
        neighbours: odometry edges from each frame to its ``neighbours`` predecessors (1 = the chain only).
        min_fitness: least fitness of an odometry edge (chain and neighbours).
        max_correspondence_distance: the fitness' (and the optimiser's) correspondence distance.
        min_ncc: least normalised cross-correlation of the two frames' intensities at the fitness' inliers (skipped
            when they have no texture); catches a plane registered onto the wrong part of a plane.
        check_stride: the fitness looks at every ``check_stride``-th pixel (rows and columns).
        cloud_voxel: voxel of the down-sampled point clouds used by the ICP fallback.
        feature_init: when neither start of a chain step registers, start a third time from ORB features matched
            between the two images (lifted to 3-D with the depths, RANSAC over 3-point fits: at least
            ``feature_min_inliers`` within ``feature_inlier_distance``). Needed for the first step of a capture
            with wide steps (there is no previous motion to repeat).
        max_edge_disagreement: (metres, degrees): a neighbour edge further than this from the chain is rejected.
        loop_closure: look for loop closures.
        loop_max_angle_deg, loop_max_distance: loop-closure candidates: chained optical axes within this angle and
            camera centres within this distance.
        loop_min_fitness: least fitness of an accepted loop closure.
        loop_max_per_frame: at most this many loop closures tried per frame (the most similar views first).
        loop_min_gap: loop-closure candidates are at least this many frames apart in the sequence (default
            ``neighbours + 1``: every pair without an odometry edge).
        optimize: run the pose-graph optimisation (False: the chained poses).
        edge_prune_threshold, preference_loop_closure: open3d ``GlobalOptimizationOption`` (the line process prunes
            uncertain edges whose confidence falls below the threshold; the preference weighs loop closures).
        align_to_first: when the first frame has ``T_world_camera``, express every pose in that frame's world.
    """

    depth_max: float = 3.0
    depth_diff_max: float = 0.03
    iterations: tuple = (20, 10, 5)
    neighbours: int = 3
    min_fitness: float = 0.3
    max_correspondence_distance: float = 0.01
    min_ncc: float = 0.5
    check_stride: int = 2
    cloud_voxel: float = 0.004
    feature_init: bool = True
    feature_min_inliers: int = 15
    feature_inlier_distance: float = 0.01
    max_edge_disagreement: tuple = (0.03, 5.0)
    loop_closure: bool = True
    loop_max_angle_deg: float = 35.0
    loop_max_distance: float = 0.3
    loop_min_fitness: float = 0.3
    loop_max_per_frame: int = 2
    loop_min_gap: Optional[int] = None
    optimize: bool = True
    edge_prune_threshold: float = 0.25
    preference_loop_closure: float = 1.0
    align_to_first: bool = True

    def __post_init__(self):
        if self.neighbours < 1:
            raise ValueError(f"PoseConfig.neighbours must be >= 1, got {self.neighbours}")
        for name in ("depth_max", "depth_diff_max", "max_correspondence_distance", "cloud_voxel"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PoseConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("min_fitness", "loop_min_fitness"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PoseConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.iterations or any(int(i) < 1 for i in self.iterations):
            raise ValueError(f"PoseConfig.iterations must be positive counts, got {self.iterations}")
        self.iterations = tuple(int(i) for i in self.iterations)
        self.max_edge_disagreement = tuple(float(x) for x in self.max_edge_disagreement)


@dataclass
class PoseEdge:
    """One registration between two frames (indices into the frame list).

    ``transformation`` is ``T_target_source`` (maps source-camera points into the target camera). ``kind``:
    ``"odometry"`` (the chain), ``"neighbour"`` or ``"loop"``; ``method``: ``"odometry"``, ``"odometry-features"``
    (started from matched ORB features), ``"odometry-skip"`` (the chain step recovered from ``k-2``) or ``"icp"``. ``accepted``: used in the pose graph; ``reason`` says why not.
    ``confidence``: the line process' weight after optimisation (1 = kept fully, < threshold = pruned; None when
    the graph was not optimised).
    """

    source: int
    target: int
    kind: str
    method: str
    success: bool
    fitness: float
    inlier_rmse: float
    ncc: float
    accepted: bool
    transformation: np.ndarray
    information: np.ndarray
    reason: str = ""
    confidence: Optional[float] = None

    def as_dict(self, names=None) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("transformation", "information")}
        d["transformation"] = np.asarray(self.transformation).tolist()
        if names is not None:
            d["source_name"], d["target_name"] = names[self.source], names[self.target]
        return d


@dataclass
class PoseResult:
    """Camera poses of a capture.

    Attributes:
        poses: (4, 4) ``T_world_camera`` per frame after the pose graph (and the alignment to the first frame).
        chained: the chained odometry poses in the same world (before the pose graph), for comparison.
        edges: every :class:`PoseEdge` tried.
        names: frame names.
        info: counts and settings.
    """

    poses: list
    chained: list
    edges: list
    names: list
    info: dict = field(default_factory=dict)

    @property
    def loop_closures(self) -> list:
        """The accepted loop-closure edges."""
        return [e for e in self.edges if e.kind == "loop" and e.accepted]

    def summary(self) -> dict:
        """JSON-safe diagnostics: counts, and every edge with its frame names."""
        out = dict(self.info)
        out["edges"] = [e.as_dict(self.names) for e in self.edges]
        return out


# ------------------------------------------------------------------------------------------------- helpers
def _rotation_angle_deg(R: np.ndarray) -> float:
    c = (np.trace(R[:3, :3]) - 1.0) / 2.0
    return float(math.degrees(math.acos(max(-1.0, min(1.0, c)))))


def relative_pose_error(T_a: np.ndarray, T_b: np.ndarray):
    """``(translation metres, rotation degrees)`` of ``T_a^-1 T_b``."""
    D = np.linalg.inv(T_a) @ T_b
    return float(np.linalg.norm(D[:3, 3])), _rotation_angle_deg(D[:3, :3])


def align_to_first(poses: Sequence[np.ndarray], T_world_first: np.ndarray) -> list:
    """The poses moved rigidly so that the first equals ``T_world_first``."""
    A = np.asarray(T_world_first, dtype=np.float64) @ np.linalg.inv(poses[0])
    return [A @ np.asarray(T, dtype=np.float64) for T in poses]


def pose_errors(estimated: Sequence[np.ndarray], truth: Sequence[np.ndarray]):
    """Per-frame camera pose error after aligning the first estimated pose onto the first true one.

    Returns ``(translation_m (N,), rotation_deg (N,))`` float64 arrays: the camera centre distance and the angle of
    ``R_true^T R_est``.
    """
    est = align_to_first(list(estimated), truth[0])
    t = np.array([np.linalg.norm(E[:3, 3] - T[:3, 3]) for E, T in zip(est, truth)])
    r = np.array([_rotation_angle_deg(T[:3, :3].T @ E[:3, :3]) for E, T in zip(est, truth)])
    return t, r


def _kabsch(P: np.ndarray, Q: np.ndarray):
    """``T`` (4, 4) with ``Q ~ R P + t`` (least squares), ``None`` for degenerate points."""
    cp, cq = P.mean(0), Q.mean(0)
    H = (P - cp).T @ (Q - cq)
    if not np.all(np.isfinite(H)) or np.linalg.matrix_rank(H) < 2:
        return None
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = cq - R @ cp
    return T


class _Registrar:
    """Per-frame RGB-D images and point clouds, and pairwise registration."""

    def __init__(self, frames, config: PoseConfig):
        import open3d as o3d

        self.o3d = o3d
        self.frames = frames
        self.config = config
        self._rgbd = {}
        self._cloud = {}
        self.option = o3d.pipelines.odometry.OdometryOption(
            iteration_number_per_pyramid_level=o3d.utility.IntVector(list(config.iterations)),
            depth_diff_max=float(config.depth_diff_max), depth_min=0.0, depth_max=float(config.depth_max))
        self.jacobian = o3d.pipelines.odometry.RGBDOdometryJacobianFromHybridTerm()

    def intrinsic(self, k):
        f = self.frames[k]
        K = f.K
        return self.o3d.camera.PinholeCameraIntrinsic(f.width, f.height, K[0, 0], K[1, 1], K[0, 2], K[1, 2])

    def rgbd(self, k):
        if k not in self._rgbd:
            f = self.frames[k]
            self._rgbd[k] = self.o3d.geometry.RGBDImage.create_from_color_and_depth(
                self.o3d.geometry.Image(np.ascontiguousarray(f.rgb)),
                self.o3d.geometry.Image(np.ascontiguousarray(f.depth)), depth_scale=1.0,
                depth_trunc=float(self.config.depth_max), convert_rgb_to_intensity=True)
        return self._rgbd[k]

    def cloud(self, k):
        if k not in self._cloud:
            pc = self.o3d.geometry.PointCloud.create_from_rgbd_image(self.rgbd(k), self.intrinsic(k))
            pc = pc.voxel_down_sample(self.config.cloud_voxel)
            pc.estimate_normals(self.o3d.geometry.KDTreeSearchParamHybrid(radius=4 * self.config.cloud_voxel,
                                                                          max_nn=30))
            self._cloud[k] = pc
        return self._cloud[k]

    def intensity(self, k):
        return np.asarray(self.rgbd(k).color, dtype=np.float64)

    def consistency(self, s, t, T_t_s):
        """``(fitness, inlier_rmse, ncc)`` of ``T_t_s``, projectively: frame ``s``'s pixels with depth (every
        ``check_stride``-th) are moved into camera ``t`` and looked up at their nearest pixel there.

        fitness: share of them that land inside ``t`` on a depth within ``max_correspondence_distance``;
        inlier_rmse: RMS of those depth differences; ncc: normalised cross-correlation of the two frames'
        intensities over those inliers (NaN when the inliers have no texture: intensity std < 0.02). Geometry alone
        cannot tell a table patch from another table patch; the texture can.
        """
        cfg, fs, ft = self.config, self.frames[s], self.frames[t]
        st = max(1, int(cfg.check_stride))
        d = fs.depth[::st, ::st].astype(np.float64)
        vv, uu = np.nonzero((d > 0) & (d <= cfg.depth_max))
        if len(vv) == 0:
            return 0.0, float("nan"), float("nan")
        z = d[vv, uu]
        u, v = uu * st, vv * st
        K = fs.K
        X = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1)
        Y = X @ T_t_s[:3, :3].T + T_t_s[:3, 3]
        front = Y[:, 2] > 1e-6
        zt = np.where(front, Y[:, 2], 1.0)
        Kt = ft.K
        ut = np.rint(Kt[0, 0] * Y[:, 0] / zt + Kt[0, 2]).astype(np.int64)
        vt = np.rint(Kt[1, 1] * Y[:, 1] / zt + Kt[1, 2]).astype(np.int64)
        inside = front & (ut >= 0) & (ut < ft.width) & (vt >= 0) & (vt < ft.height)
        dt = np.zeros(len(z))
        dt[inside] = ft.depth[vt[inside], ut[inside]]
        diff = np.abs(dt - Y[:, 2])
        inl = inside & (dt > 0) & (diff <= cfg.max_correspondence_distance)
        n_in = int(inl.sum())
        fitness = n_in / len(z)
        if n_in == 0:
            return 0.0, float("nan"), float("nan")
        rmse = float(np.sqrt(np.mean(diff[inl] ** 2)))
        a = self.intensity(s)[v[inl], u[inl]]
        b = self.intensity(t)[vt[inl], ut[inl]]
        if a.std() < 0.02 or b.std() < 0.02 or n_in < 10:
            return fitness, rmse, float("nan")
        ncc = float(np.mean((a - a.mean()) * (b - b.mean())) / (a.std() * b.std()))
        return fitness, rmse, ncc

    def odometry(self, s, t, init):
        """``(success, T_t_s, information)`` of the RGB-D odometry from frame ``s`` to frame ``t``."""
        if not np.allclose(self.frames[s].K, self.frames[t].K, atol=1e-6) or \
                self.frames[s].depth.shape != self.frames[t].depth.shape:
            raise PoseEstimationError(
                f"frames {self.frames[s].name} and {self.frames[t].name}: RGB-D odometry needs one camera "
                f"(same K and image size), got K {self.frames[s].K.tolist()} / {self.frames[t].K.tolist()}")
        ok, T, info = self.o3d.pipelines.odometry.compute_rgbd_odometry(
            self.rgbd(s), self.rgbd(t), self.intrinsic(s), np.asarray(init, dtype=np.float64), self.jacobian,
            self.option)
        return bool(ok), np.asarray(T), np.asarray(info)

    def icp(self, s, t, init):
        """``(success, T_t_s, information)`` of point-to-plane ICP from frame ``s``'s cloud to ``t``'s."""
        reg = self.o3d.pipelines.registration
        d = 3.0 * self.config.max_correspondence_distance
        res = reg.registration_icp(self.cloud(s), self.cloud(t), d, np.asarray(init, dtype=np.float64),
                                   reg.TransformationEstimationPointToPlane(),
                                   reg.ICPConvergenceCriteria(max_iteration=50))
        res = reg.registration_icp(self.cloud(s), self.cloud(t), self.config.max_correspondence_distance,
                                   res.transformation, reg.TransformationEstimationPointToPlane(),
                                   reg.ICPConvergenceCriteria(max_iteration=30))
        T = np.asarray(res.transformation)
        info = reg.get_information_matrix_from_point_clouds(self.cloud(s), self.cloud(t),
                                                            self.config.max_correspondence_distance, T)
        return len(res.correspondence_set) > 0, T, np.asarray(info)

    def feature_motion(self, s, t):
        """``T_t_s`` from ORB features matched between the two colour images, lifted to 3-D with the depths and
        fitted by RANSAC over 3-point Kabsch fits (what the odometry then starts from); ``None`` when fewer than
        ``feature_min_inliers`` matches agree."""
        import cv2

        cfg = self.config
        fs, ft = self.frames[s], self.frames[t]
        orb = cv2.ORB_create(nfeatures=1500, scaleFactor=1.2, nlevels=4, edgeThreshold=8, patchSize=15,
                             fastThreshold=10)
        kp_s, des_s = orb.detectAndCompute(cv2.cvtColor(fs.rgb, cv2.COLOR_RGB2GRAY), None)
        kp_t, des_t = orb.detectAndCompute(cv2.cvtColor(ft.rgb, cv2.COLOR_RGB2GRAY), None)
        if des_s is None or des_t is None or len(kp_s) < 8 or len(kp_t) < 8:
            return None
        matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(des_s, des_t)

        def lift(frame, kps, idx):
            uv = np.array([kps[i].pt for i in idx], dtype=np.float64)
            u, v = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
            u, v = np.clip(u, 0, frame.width - 1), np.clip(v, 0, frame.height - 1)
            z = frame.depth[v, u].astype(np.float64)
            K = frame.K
            return np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], 1), z

        if len(matches) < cfg.feature_min_inliers:
            return None
        P, zs = lift(fs, kp_s, [m.queryIdx for m in matches])
        Q, zt = lift(ft, kp_t, [m.trainIdx for m in matches])
        ok = (zs > 0) & (zs <= cfg.depth_max) & (zt > 0) & (zt <= cfg.depth_max)
        P, Q = P[ok], Q[ok]
        if len(P) < cfg.feature_min_inliers:
            return None
        rng = np.random.default_rng(0)
        best, best_in = None, None
        for _ in range(300):
            idx = rng.choice(len(P), 3, replace=False)
            T = _kabsch(P[idx], Q[idx])
            if T is None:
                continue
            inl = np.linalg.norm(P @ T[:3, :3].T + T[:3, 3] - Q, axis=1) < cfg.feature_inlier_distance
            if best_in is None or inl.sum() > best_in.sum():
                best, best_in = T, inl
        if best_in is None or best_in.sum() < cfg.feature_min_inliers:
            return None
        return _kabsch(P[best_in], Q[best_in])

    def edge(self, s, t, init, kind, method="odometry") -> PoseEdge:
        if method == "icp":
            ok, T, info = self.icp(s, t, init)
        else:
            ok, T, info = self.odometry(s, t, init)
        fit, rmse, ncc = self.consistency(s, t, T) if ok else (0.0, float("nan"), float("nan"))
        return PoseEdge(source=s, target=t, kind=kind, method=method, success=ok, fitness=fit, inlier_rmse=rmse,
                        ncc=ncc, accepted=False, transformation=T, information=info)

    def verdict(self, e: PoseEdge, min_fitness: float, what: str = "odometry") -> str:
        """Why ``e`` is not good enough ("" = it is)."""
        if not e.success:
            return f"{what} failed"
        if e.fitness < min_fitness:
            return f"fitness {e.fitness:.3f} < {min_fitness}"
        if np.isfinite(e.ncc) and e.ncc < self.config.min_ncc:
            return f"intensities disagree (NCC {e.ncc:.2f} < min_ncc {self.config.min_ncc})"
        return ""


# --------------------------------------------------------------------------------------------------- main
def estimate_poses(frames: Sequence[Frame], config: PoseConfig = PoseConfig(), progress: bool = False
                   ) -> PoseResult:
    """``T_world_camera`` of every frame from the RGB-D images alone (see the module docstring).

    Args:
        frames: the keyframes in capture order (consecutive frames must overlap), one camera (same ``K``, size).
        config: :class:`PoseConfig`.
        progress: tqdm bars.
    Returns:
        :class:`PoseResult` (poses in the first frame's world, or aligned to the first frame's known pose).
    Raises:
        PoseEstimationError: a pair of consecutive frames could not be linked; the message names both frames.
        ValueError: no frames.
    """
    from tqdm import tqdm

    frames = list(frames)
    if not frames:
        raise ValueError("estimate_poses: no frames")
    names = [f.name for f in frames]
    reg = _Registrar(frames, config)
    n = len(frames)
    world = [np.eye(4)]
    edges: list = []
    max_dt, max_dr = config.max_edge_disagreement
    for k in tqdm(range(1, n), desc="poses (odometry)", unit="frame", disable=not progress):
        # 1. the chain step k-1 -> k, from two starting guesses (a third from features when both fail)
        inits = []
        if k >= 2:
            inits.append(("constant velocity", np.linalg.inv(world[k - 1]) @ world[k - 2]))
        inits.append(("no motion", np.eye(4)))
        tried = [reg.edge(k - 1, k, init, "odometry") for _, init in inits]
        for e in tried:
            e.reason = reg.verdict(e, config.min_fitness)
        if all(e.reason for e in tried) and config.feature_init:
            # a wide step (or the first one, with no motion to repeat): start from matched ORB features
            T_feat = reg.feature_motion(k - 1, k)
            if T_feat is not None:
                e = reg.edge(k - 1, k, T_feat, "odometry", method="odometry-features")
                e.reason = reg.verdict(e, config.min_fitness)
                tried.append(e)
        # the best start: a good result first, then the highest fitness
        best = max(tried, key=lambda e: (not e.reason, e.fitness))
        step = None  # T_{k, k-1}
        if not best.reason:
            best.accepted = True
            step = best.transformation
            edges.append(best)
        else:
            edges.append(best)
            recovered = None
            if k >= 2:  # 1b. skip the last frame: k-2 -> k, started from the constant-velocity guess
                init = inits[0][1] @ np.linalg.inv(world[k - 1]) @ world[k - 2]
                e = reg.edge(k - 2, k, init, "odometry", method="odometry-skip")
                e.reason = reg.verdict(e, config.min_fitness)
                edges.append(e)
                if not e.reason:
                    e.accepted = True
                    # T_{k, k-1} = T_{k, k-2} T_{k-2, k-1}
                    recovered = e.transformation @ np.linalg.inv(world[k - 2]) @ world[k - 1]
            if recovered is None:  # 1c. point-to-plane ICP on the clouds
                icp_edges = [reg.edge(k - 1, k, init, "odometry", method="icp") for _, init in inits]
                for e in icp_edges:
                    e.reason = reg.verdict(e, config.min_fitness, "ICP")
                e = max(icp_edges, key=lambda e: (not e.reason, e.fitness))
                edges.append(e)
                if not e.reason:
                    e.accepted = True
                    recovered = e.transformation
            if recovered is None:
                tried_text = "; ".join(f"{x.method} {names[x.source]} -> {names[x.target]}: {x.reason}"
                                       for x in edges if x.target == k and x.kind == "odometry")
                raise PoseEstimationError(
                    f"camera poses: frames {names[k - 1]} -> {names[k]} (indices {k - 1}, {k}) could not be "
                    f"registered ({tried_text}). The camera moved too far between the two frames, or they show "
                    "too little depth or texture; capture keyframes closer together.")
            step = recovered
        world.append(world[k - 1] @ np.linalg.inv(step))
        # 2. neighbour edges j -> k, started from the chain
        for j in range(max(0, k - config.neighbours), k - 1):
            chain = np.linalg.inv(world[k]) @ world[j]
            if any(e.source == j and e.target == k and e.accepted for e in edges):
                continue
            e = reg.edge(j, k, chain, "neighbour")
            e.reason = reg.verdict(e, config.min_fitness)
            dt, dr = relative_pose_error(chain, e.transformation)
            if not e.reason and (dt > max_dt or dr > max_dr):
                e.reason = f"disagrees with the chain by {dt * 1000:.1f} mm / {dr:.2f} deg"
            e.accepted = not e.reason
            edges.append(e)
    chained = [T.copy() for T in world]

    # 3. loop closures between frames far apart in the sequence whose chained cameras look alike
    n_loop_tried = 0
    gap = config.neighbours + 1 if config.loop_min_gap is None else max(int(config.loop_min_gap), 2)
    if config.loop_closure and n > gap:
        candidates = []
        for j in range(n):
            row = []
            for i in range(0, j - gap + 1):
                dist = float(np.linalg.norm(world[i][:3, 3] - world[j][:3, 3]))
                ang = math.degrees(math.acos(max(-1.0, min(1.0, float(world[i][:3, 2] @ world[j][:3, 2])))))
                if ang <= config.loop_max_angle_deg and dist <= config.loop_max_distance:
                    row.append((ang + 100.0 * dist, i, j))
            candidates += sorted(row)[:config.loop_max_per_frame]
        for _, i, j in tqdm(candidates, desc="poses (loop closures)", unit="pair", disable=not progress):
            e = reg.edge(i, j, np.linalg.inv(world[j]) @ world[i], "loop")
            n_loop_tried += 1
            e.reason = reg.verdict(e, config.loop_min_fitness)
            e.accepted = not e.reason
            edges.append(e)

    # 4. pose graph
    poses = [T.copy() for T in world]
    optimized = False
    extra = [e for e in edges if e.accepted and e.kind != "odometry"]
    if config.optimize and extra:
        poses = _optimize(world, [e for e in edges if e.accepted], config)
        optimized = True
    if config.align_to_first and frames[0].T_world_camera is not None:
        poses = align_to_first(poses, frames[0].T_world_camera)
        chained = align_to_first(chained, frames[0].T_world_camera)
    info = {
        "frames": n, "optimized": optimized,
        "edges_tried": len(edges), "edges_accepted": sum(e.accepted for e in edges),
        "loop_closures_tried": n_loop_tried, "loop_closures_accepted": sum(1 for e in edges
                                                                           if e.kind == "loop" and e.accepted),
        "recovered_steps": sum(1 for e in edges if e.accepted and e.method != "odometry"),
        "world": "first frame's T_world_camera" if (config.align_to_first and frames[0].T_world_camera is not None)
                 else "first camera",
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
    }
    return PoseResult(poses=poses, chained=chained, edges=edges, names=names, info=info)


def _optimize(world, accepted, config: PoseConfig) -> list:
    """Levenberg-Marquardt pose graph with open3d's line process; the first node is the reference."""
    import open3d as o3d

    reg = o3d.pipelines.registration
    graph = reg.PoseGraph()
    for T in world:
        graph.nodes.append(reg.PoseGraphNode(np.asarray(T, dtype=np.float64)))
    index = {}
    for e in accepted:
        # the chain step (and its recoveries) is certain; every other edge may be pruned by the line process
        uncertain = e.kind != "odometry"
        index[(e.source, e.target)] = e
        graph.edges.append(reg.PoseGraphEdge(e.source, e.target, np.asarray(e.transformation, dtype=np.float64),
                                             np.asarray(e.information, dtype=np.float64), uncertain=uncertain))
    option = reg.GlobalOptimizationOption(max_correspondence_distance=float(config.max_correspondence_distance),
                                          edge_prune_threshold=float(config.edge_prune_threshold),
                                          preference_loop_closure=float(config.preference_loop_closure),
                                          reference_node=0)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        reg.global_optimization(graph, reg.GlobalOptimizationLevenbergMarquardt(),
                                reg.GlobalOptimizationConvergenceCriteria(), option)
    kept = {(ge.source_node_id, ge.target_node_id): float(ge.confidence) for ge in graph.edges}
    for key, e in index.items():
        e.confidence = kept.get(key, 0.0)
        if key not in kept:
            e.reason = (e.reason + "; " if e.reason else "") + "pruned by the pose graph"
    poses = [np.asarray(node.pose).copy() for node in graph.nodes]
    # the reference node stays where it was; make that exact
    A = np.asarray(world[0]) @ np.linalg.inv(poses[0])
    return [A @ T for T in poses]
