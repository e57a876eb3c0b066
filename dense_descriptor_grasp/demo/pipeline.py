"""Step 5, pipeline: the pip bringup's nodes in this process on their own DDS domain, each seeded object pose held
until the pipeline has processed it; the published grasp beside the true part, per pose."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from dense_descriptor_grasp.atomic_io import atomic_write_text

from .pictures import save_pose_pictures
from .settings import OBJECT, DemoSettings, log, step_label, step_number
from .summary import part_error_mm


HOLD_POSE = 3600.0   # sim camera pose_period while a pose is being grasped (the demo advances poses itself)


def _isolate_ros_domain() -> None:
    """Own DDS domain (pid based) and localhost discovery, unless the user chose a domain."""
    if "ROS_DOMAIN_ID" not in os.environ:
        os.environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() * 13) % 100)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def _pipeline_params(s: DemoSettings) -> Path:
    """config/grasp.yaml with the demo's sim camera settings (image size of the dataset, seeded poses)."""
    import yaml

    from dense_descriptor_grasp import bringup

    base = Path(bringup.default_share_dir()) / "config" / "grasp.yaml"
    params = yaml.safe_load(base.read_text())
    cam = params["sim_camera_node"]["ros__parameters"]
    cam.update(width=s.width, height=s.height, seed=s.pose_seed, pose_period=HOLD_POSE, rate=float(s.camera_rate))
    path = s.path(s.out) / "pipeline_params.yaml"
    atomic_write_text(path, f"# written by the demo from {base}\n" + yaml.safe_dump(params, sort_keys=False))
    return path


def step_pipeline(s: DemoSettings) -> dict:
    """Start the bringup's nodes in this process and record a grasp for each of ``s.poses`` object poses."""
    import rclpy
    from rclpy.context import Context

    from dense_descriptor_grasp import bringup
    from dense_descriptor_grasp.nodes.common import pipeline_executor
    from dense_descriptor_grasp.nodes.demo_observer import DemoObserver
    from dense_descriptor_grasp.objects import object_parts

    part_object = object_parts(OBJECT)[s.part]
    ref_path = s.path(s.model_dir) / f"reference_{s.part}.npz"
    params = _pipeline_params(s)
    values = bringup.parse_arguments([f"model:={s.checkpoint}", f"reference:={ref_path}", "use_sim_camera:=true",
                                      f"device:={s.device}", f"params_file:={params}"])
    _isolate_ros_domain()
    timeout = s.pipeline_timeout or 60.0 + 30.0 * s.poses
    log(f"{step_label('pipeline')}: bringup model:={s.checkpoint} reference:={ref_path} use_sim_camera:=true "
        f"params_file:={params} (in this process, ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}); "
        f"{s.poses} object poses (seed {s.pose_seed}), each held until the pipeline has processed it")
    context = Context()
    rclpy.init(context=context)
    nodes, observer, executor = [], None, None
    rows = []
    try:
        nodes = bringup.start_nodes(values, context=context)
        camera = next((n for n in nodes if n.get_name() == "sim_camera_node"), None)
        observer = DemoObserver(context=context, camera_node=camera)
        executor = pipeline_executor(context)
        for node in nodes + [observer]:
            executor.add_node(node)
        t0 = time.monotonic()
        reported = 0
        last_note = t0
        while reported < s.poses:
            executor.spin_once(timeout_sec=0.05)
            with observer.lock:
                while reported < s.poses and reported < len(observer.poses) and observer.finished(reported):
                    rows.append(_report_pose(s, observer, reported, part_object))
                    reported += 1
                    if reported < s.poses and len(observer.poses) <= reported:
                        observer.next_pose()
            now = time.monotonic()
            if now - t0 > timeout:
                log(f"{step_label('pipeline')}: timeout after {timeout:.0f} s with {reported}/{s.poses} poses done")
                break
            if now - last_note > 20.0:
                last_note = now
                log(f"{step_label('pipeline')}: ... waiting (pose {len(observer.poses)} on the camera, grasp node processed "
                    f"frames up to pose {observer.max_processed + 1})")
        for i in range(reported, s.poses):
            rows.append({"pose": i + 1, "error_mm": None, "mode": "none", "frames": 0, "note": "not reached"})
    finally:
        everything = nodes + ([observer] if observer is not None else [])
        if executor is not None:
            for node in everything:
                executor.remove_node(node)
            executor.shutdown()
        for node in everything:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return {"rows": rows}


def _report_pose(s: DemoSettings, observer, index: int, part_object) -> dict:
    """Print one pose's line and save its pictures; returns the row (error_mm None when no grasp)."""
    T_co = observer.poses[index]
    true = T_co[:3, :3] @ part_object + T_co[:3, 3]
    frames = observer.processed.get(index, 0)
    row = {"pose": index + 1, "true_mm": np.round(true * 1000, 1).tolist(), "frames": frames}
    stamp = None
    if index in observer.grasps:
        stamp, T_cg = observer.grasps[index]
        err = part_error_mm(T_cg[:3, 3], T_co, part_object)
        text = observer.modes.get(stamp, "")
        mode = text.split()[0] if text else "?"
        row.update(grasp_mm=np.round(T_cg[:3, 3] * 1000, 1).tolist(), error_mm=round(err, 2), mode=mode,
                   marker=text)
        log(f"{step_number('pipeline')} pose {index + 1:2d}/{s.poses}: grasp at {_fmt(T_cg[:3, 3])} mm, true '{s.part}' "
            f"at {_fmt(true)} mm (camera frame) -> error {err:6.1f} mm [{text}]")
    else:
        row.update(error_mm=None, mode="none")
        log(f"{step_number('pipeline')} pose {index + 1:2d}/{s.poses}: no grasp published ({frames} frame(s) of this pose "
            f"processed); true '{s.part}' at {_fmt(true)} mm")
    if stamp is None:  # no grasp: the newest frame of this pose that went through the whole pipeline
        stamps = [t for t, i in observer.pose_of_stamp.items() if i == index and t in observer.images["heatmap"]]
        stamp = stamps[-1] if stamps else None
    if stamp is not None:
        row["pictures"] = save_pose_pictures(s, observer, index, stamp, true, T_cg if index in observer.grasps else None)
    return row


def _fmt(p) -> str:
    return "(" + ", ".join(f"{v * 1000:6.1f}" for v in p) + ")"
