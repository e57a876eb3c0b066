"""The training camera spans (data/camera_spans.py) contain the robot's cameras: the demo's sim camera and the grasp
benchmark's renders. Their numbers are read from their own modules / config files, not copied here."""
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

from dense_descriptor_grasp.data.camera_spans import (TRAINING_CAMERA_SPANS, CameraSpans, camera_parameters,
                                                      fit_distance)
from dense_descriptor_grasp.data.render import RenderConfig, _object_vertices_local, sample_camera, sample_scene
from dense_descriptor_grasp.objects import resolve_object

REPO = Path(__file__).resolve().parents[1]


def _target_sphere(spec, T_world_object, cache):
    """Centre (bounding-box centre) and radius of the object's visual vertices in the world, as sample_scene."""
    pts = _object_vertices_local(spec, cache) @ T_world_object[:3, :3].T + T_world_object[:3, 3]
    centre = 0.5 * (pts.min(0) + pts.max(0))
    return centre, float(np.linalg.norm(pts - centre, axis=1).max())


def _small(width, height, rows=48):
    """A small image of the same aspect ratio (the spans depend on the aspect, not on the pixel count)."""
    w = round(rows * width / height)
    assert abs(w / rows - width / height) < 1e-9
    return w, rows


def _sim_camera_settings():
    import yaml

    from dense_descriptor_grasp.demo import DemoSettings

    yaml_params = yaml.safe_load((REPO / "config" / "grasp.yaml").read_text())["sim_camera_node"]["ros__parameters"]
    demo = DemoSettings()
    # the demo runs config/grasp.yaml with its own image size and pose seed (demo._pipeline_params)
    return [("config/grasp.yaml", yaml_params),
            ("demo", dict(yaml_params, width=demo.width, height=demo.height, seed=demo.pose_seed))]


@pytest.mark.parametrize("which", [0, 1], ids=["grasp_yaml", "demo"])
def test_the_sim_camera_lies_inside_the_training_spans(which):
    from dense_descriptor_grasp.sim.cameras import SimCamera

    _, cfg = _sim_camera_settings()[which]
    w, h = _small(cfg["width"], cfg["height"])
    # as SimCameraNode builds it; distance_factor and position_range are SimCamera's own defaults
    cam = SimCamera(list(cfg["objects"]), w, h, cfg["fov_deg"], cfg["seed"], (cfg["background"],),
                    cfg["camera_elevation_deg"])
    cache, seen = {}, []
    try:
        for _ in range(40):
            view = cam.new_pose()
            centre, radius = _target_sphere(cam.specs[0], view.object_poses[0][2], cache)
            p = camera_parameters(cam.T_world_camera, view.K, w, h, centre, radius)
            assert TRAINING_CAMERA_SPANS.violations(p) == [], p
            seen.append(p)
    finally:
        cam.close()
    assert seen[0]["elevation_deg"] == pytest.approx(cfg["camera_elevation_deg"])
    assert seen[0]["fov_deg"] == pytest.approx(cfg["fov_deg"]) and seen[0]["roll_deg"] == pytest.approx(0, abs=1e-6)


class _Captured(Exception):
    pass


def _benchmark_probe():
    from benchmarks.grasp_sim import RenderedPredictor, get_args_parser

    class Probe(RenderedPredictor):
        def descriptors(self, view, live=True):  # make_reference renders its view, then asks for descriptors: stop there
            raise _Captured(view)

    defaults = get_args_parser()
    obj = defaults.get_default("object")
    spec = resolve_object(obj)
    scale = spec.scale if defaults.get_default("scale") is None else defaults.get_default("scale")
    w, h = _small(defaults.get_default("width"), defaults.get_default("height"))
    keypoint = spec.default_part
    return Probe(obj, keypoint, scale, width=w, height=h), obj, scale, w, h


def test_the_grasp_benchmark_cameras_lie_inside_the_training_spans():
    from benchmarks.grasp_sim import RenderedPredictor
    from dense_descriptor_grasp.sim import grasp_sim as gs

    probe, obj, scale, w, h = _benchmark_probe()
    signature = inspect.signature(RenderedPredictor.__init__).parameters
    cache, seen = {}, []
    try:
        assert probe.config.fov_deg == signature["fov_deg"].default
        assert list(probe.config.elevation_deg) == list(signature["elevation_deg"].default)
        for i in range(30):  # the trials' renders: run_trial's object poses, sample_camera_pose with RenderConfig
            T_world_object = gs.random_object_pose(np.random.default_rng([0, i]), obj, scale)
            view = probe._render(T_world_object, np.random.default_rng(i))
            centre, radius = _target_sphere(probe.render_spec, T_world_object, cache)
            p = camera_parameters(view.T_world_camera, view.K, w, h, centre, radius)
            assert TRAINING_CAMERA_SPANS.violations(p) == [], p
            seen.append(p)
        with pytest.raises(_Captured) as captured:  # the auto reference view
            probe.make_reference()
        ref = captured.value.args[0]
        centre, radius = _target_sphere(probe.render_spec, ref.object_poses[0][2], cache)
        p = camera_parameters(ref.T_world_camera, ref.K, w, h, centre, radius)
        assert TRAINING_CAMERA_SPANS.violations(p) == [], p
    finally:
        probe.close()
    assert p["elevation_deg"] == pytest.approx(50.0)
    assert max(abs(q["roll_deg"]) for q in seen) <= RenderConfig().roll_deg + 1e-6


def test_drawn_cameras_have_exactly_the_drawn_parameters_and_stay_inside():
    cfg = RenderConfig.training(width=64, height=48)
    assert cfg.camera_spans is TRAINING_CAMERA_SPANS
    rng = np.random.default_rng(0)
    scene = sample_scene(rng, [resolve_object("duck")], cfg, {})
    draws = []
    for _ in range(300):
        state = rng.bit_generator.state
        T, fov = sample_camera(rng, scene, cfg)
        p = camera_parameters(T, _K(fov, 64, 48), 64, 48, scene.center, scene.radius)
        assert TRAINING_CAMERA_SPANS.violations(p) == []
        rng2 = np.random.default_rng()
        rng2.bit_generator.state = state
        drawn_fov = rng2.uniform(*TRAINING_CAMERA_SPANS.fov_deg)
        lo, hi = TRAINING_CAMERA_SPANS.distance_factor
        factor = math.exp(rng2.uniform(math.log(lo), math.log(hi)))
        assert p["fov_deg"] == pytest.approx(drawn_fov) and p["distance_factor"] == pytest.approx(factor)
        draws.append(p)
    # the draws fill the spans (not a narrower sub-range)
    for key in ("elevation_deg", "fov_deg", "distance_factor"):
        lo, hi = getattr(TRAINING_CAMERA_SPANS, key)
        vals = [p[key] for p in draws]
        assert min(vals) < lo + 0.1 * (hi - lo) and max(vals) > hi - 0.1 * (hi - lo), key
    rolls = [p["roll_deg"] for p in draws]
    assert min(rolls) < -0.8 * TRAINING_CAMERA_SPANS.roll_deg and max(rolls) > 0.8 * TRAINING_CAMERA_SPANS.roll_deg


def _K(fov, w, h):
    from dense_descriptor_grasp.geometry.rendering import intrinsics_from_fov

    return intrinsics_from_fov(fov, w, h)


def test_fit_distance_and_span_checks():
    # a sphere of radius r at the fit distance touches the narrower field of view
    r, fov = 0.05, 50.0
    d = fit_distance(r, fov, 320, 240)
    assert math.asin(r / d) == pytest.approx(math.radians(fov / 2))
    assert fit_distance(r, fov, 100, 240) > d   # portrait: the horizontal field of view is the narrower
    spans = CameraSpans(elevation_deg=(20, 30), distance_factor=(1, 2), roll_deg=5, fov_deg=(50, 50),
                        look_at_offset=0.1)
    bad = {"elevation_deg": 40.0, "distance_factor": 1.5, "roll_deg": -6.0, "fov_deg": 50.0,
           "look_at_offset": (0.0, 0.2)}
    assert [v.split()[0] for v in spans.violations(bad)] == ["elevation_deg", "roll_deg", "look_at_offset"]
    with pytest.raises(ValueError, match="distance_factor"):
        CameraSpans(distance_factor=(2.0, 1.0))


def test_the_generator_cli_defaults_are_the_training_spans():
    from dense_descriptor_grasp.data.generate import config_from_args, get_args_parser

    cfg = config_from_args(get_args_parser().parse_args(["--out", "x"]))
    assert cfg == RenderConfig.training()
    assert cfg.camera_spans == TRAINING_CAMERA_SPANS


def test_evaluation_spans_lie_inside_the_training_spans_and_are_selectable_on_the_command_line():
    from dense_descriptor_grasp.data.camera_spans import EVALUATION_CAMERA_SPANS
    from dense_descriptor_grasp.data.generate import config_from_args, get_args_parser

    ev, tr = EVALUATION_CAMERA_SPANS, TRAINING_CAMERA_SPANS
    for key in ("elevation_deg", "distance_factor", "fov_deg"):
        assert getattr(tr, key)[0] <= getattr(ev, key)[0] <= getattr(ev, key)[1] <= getattr(tr, key)[1], key
    assert ev.roll_deg <= tr.roll_deg and ev.look_at_offset <= tr.look_at_offset
    cfg = config_from_args(get_args_parser().parse_args(["--out", "x", "--cameras", "evaluation"]))
    assert cfg.camera_spans == ev
    cfg = config_from_args(get_args_parser().parse_args(["--out", "x", "--cameras", "evaluation", "--roll", "5"]))
    assert cfg.camera_spans.roll_deg == 5 and cfg.camera_spans.elevation_deg == ev.elevation_deg
    assert config_from_args(get_args_parser().parse_args(["--out", "x"])).camera_spans == tr
