"""generate_dataset: byte-identical per seed, resumes after an interruption, refuses mismatched arguments."""
import json
import math
import os

import numpy as np
import pytest

from dense_descriptor_grasp.data.camera_spans import TRAINING_CAMERA_SPANS
from dense_descriptor_grasp.data.generate import generate_dataset, main
from dense_descriptor_grasp.data.render import RenderConfig

SMALL = dict(num_views=4, views_per_scene=2, seed=7, config=RenderConfig(width=80, height=64), progress=False)


def _tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ref"))
    generate_dataset(root, **SMALL)
    return root


def test_same_seed_is_byte_identical_and_complete(reference, tmp_path):
    generate_dataset(str(tmp_path), **SMALL)
    a, b = _tree(reference), _tree(str(tmp_path))
    assert sorted(a) == sorted(b)
    assert len(a) == 1 + 4 * 4
    assert all(a[k] == b[k] for k in a)
    manifest = json.loads(a["manifest.json"])
    assert manifest["complete"] and manifest["count"] == 4
    assert manifest["multiview_pairs"] == [["000000", "000001"], ["000002", "000003"]]
    cam = json.loads(a[os.path.join("camera", "000000.json")])
    assert {"K", "depth_scale", "T_world_camera", "width", "height", "objects", "scene_id"} <= set(cam)
    assert cam["objects"][0]["name"] == "duck"


def test_other_seed_differs(reference, tmp_path):
    generate_dataset(str(tmp_path), **{**SMALL, "seed": 8, "config": RenderConfig(width=80, height=64)})
    a, b = _tree(reference), _tree(str(tmp_path))
    assert a[os.path.join("rgb", "000000.png")] != b[os.path.join("rgb", "000000.png")]


def test_interrupted_run_resumes_to_the_same_bytes(reference, tmp_path):
    root = str(tmp_path)

    def stop_after_two(view_id):
        if view_id == "000001":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, **SMALL, on_view_written=stop_after_two)
    assert sorted(os.listdir(os.path.join(root, "camera"))) == ["000000.json", "000001.json"]
    assert not json.load(open(os.path.join(root, "manifest.json")))["complete"]
    # a view whose camera JSON never got written counts as missing; a stray temp file is cleaned up
    os.remove(os.path.join(root, "camera", "000001.json"))
    open(os.path.join(root, "rgb", ".tmp-000002.png.abc"), "wb").write(b"half")
    calls = []
    stats = generate_dataset(root, **SMALL, on_view_written=calls.append)
    assert calls == ["000001", "000002", "000003"] and stats["skipped"] == 1
    a, b = _tree(reference), _tree(root)
    assert sorted(a) == sorted(b)
    assert all(a[k] == b[k] for k in a)


def test_resume_with_other_arguments_is_refused(reference):
    with pytest.raises(ValueError, match="seed"):
        generate_dataset(reference, **{**SMALL, "seed": 1})


def test_cli_writes_a_dataset(tmp_path, capsys):
    rc = main(["--out", str(tmp_path / "d"), "--objects", "duck", "--views", "2", "--width", "80", "--height", "64",
               "--no-progress"])
    assert rc == 0
    assert "2 views written" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "e"), "--objects", "no_such_object", "--no-progress"]) == 2
    assert "no_such_object" in capsys.readouterr().err


def test_user_obj_file_and_background_folder(tmp_path):
    import cv2
    import numpy as np

    obj = tmp_path / "cube.obj"
    v = [(x, y, z) for x in (-0.03, 0.03) for y in (-0.03, 0.03) for z in (-0.03, 0.03)]
    faces = [(1, 2, 4, 3), (5, 7, 8, 6), (1, 5, 6, 2), (3, 4, 8, 7), (1, 3, 7, 5), (2, 6, 8, 4)]
    obj.write_text("".join(f"v {a} {b} {c}\n" for a, b, c in v)
                   + "".join(f"f {a} {b} {c}\nf {a} {c} {d}\n" for a, b, c, d in faces))
    bg = tmp_path / "bg"
    bg.mkdir()
    cv2.imwrite(str(bg / "stripes.png"), np.tile(np.array([[0, 0, 255], [0, 255, 0]], np.uint8)[:, None], (16, 16, 1)))
    out = tmp_path / "d"
    generate_dataset(str(out), objects=[str(obj)], num_views=2, views_per_scene=2, seed=0, progress=False,
                     config=RenderConfig(width=80, height=64, backgrounds=("images",), background_dir=str(bg)))
    cam = json.load(open(out / "camera" / "000001.json"))
    assert cam["objects"][0]["name"] == "cube" and cam["background"] == "images"
    mask = cv2.imread(str(out / "mask" / "000001.png"), cv2.IMREAD_UNCHANGED)
    assert (mask == 1).sum() > 20
    rgb = cv2.imread(str(out / "rgb" / "000001.png"))[:, :, ::-1]
    bg_pixels = rgb[mask == 0].astype(int)
    # the background comes from the red/green image (lit, so not pure), never blue
    assert (bg_pixels[:, 2] < 60).mean() > 0.9


def test_killed_process_resumes_to_the_same_bytes(tmp_path):
    """SIGKILL a real generator process mid-run (no cleanup code runs), then resume."""
    import signal
    import subprocess
    import sys
    import time

    args = ["--num-views", "12", "--width", "80", "--height", "64", "--seed", "5", "--no-progress"]
    killed = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "-m", "dense_descriptor_grasp.data.generate", "--out", killed, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cam_dir = os.path.join(killed, "camera")
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(cam_dir) and len(os.listdir(cam_dir)) >= 2:
            break
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len([f for f in os.listdir(cam_dir) if f.endswith(".json")])
    assert main(["--out", killed, *args]) == 0
    fresh = str(tmp_path / "fresh")
    assert main(["--out", fresh, *args]) == 0
    a, b = _tree(fresh), _tree(killed)
    assert sorted(a) == sorted(b) and all(a[k] == b[k] for k in a)
    assert done_before >= 2


# --- clutter: target + distractors, training spans ------------------------------------------------------------------

CLUTTER = dict(objects=["duck"], num_views=4, views_per_scene=2, seed=4, progress=False,
               config=RenderConfig.training(width=64, height=48), distractors=["train"], distractors_per_scene=(2, 3))


@pytest.fixture(scope="module")
def clutter_reference(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("clutter_ref"))
    generate_dataset(root, **CLUTTER)
    return root


def test_cluttered_dataset_is_byte_identical_per_seed_and_resumes(clutter_reference, tmp_path):
    a = _tree(clutter_reference)
    generate_dataset(str(tmp_path / "again"), **CLUTTER)
    b = _tree(str(tmp_path / "again"))
    assert sorted(a) == sorted(b) and all(a[k] == b[k] for k in a)
    # interrupted after the first view, resumed: the same bytes
    root = str(tmp_path / "resumed")

    def stop(view_id):
        if view_id == "000000":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, **CLUTTER, on_view_written=stop)
    generate_dataset(root, **CLUTTER)
    c = _tree(root)
    assert sorted(a) == sorted(c) and all(a[k] == c[k] for k in a)
    manifest = json.loads(a["manifest.json"])
    g = manifest["generator"]
    assert g["distractors"] == ["train"] and g["distractors_per_scene"] == [2, 3]
    assert g["camera_spans"]["roll_deg"] == TRAINING_CAMERA_SPANS.roll_deg and g["scene_spans"]["separate_sky"] is True
    assert ["random_urdfs/000-499", 6] in manifest["distractors"]
    for vid in ("000000", "000001", "000002", "000003"):
        cam = json.loads(a[os.path.join("camera", vid + ".json")])
        roles = [o["role"] for o in cam["objects"]]
        assert roles[0] == "target" and 3 <= len(roles) <= 4 and set(roles[1:]) == {"distractor"}
        assert cam["target"] == "duck" and {"ambient", "diffuse", "specular", "shadow", "color"} <= set(cam["light"])


@pytest.mark.parametrize("change", [
    {"distractors": ["eval"]}, {"distractors_per_scene": (1, 3)},
    {"config": RenderConfig.training(width=64, height=48, distractor_size=(0.05, 0.06))},
    {"config": RenderConfig.training(width=64, height=48, camera_spans=None)},
    {"config": RenderConfig.training(width=64, height=48, backgrounds=("plain",))},
])
def test_resume_with_other_clutter_arguments_is_refused(clutter_reference, change):
    key = next(iter(change))
    with pytest.raises(ValueError, match="other arguments"):
        generate_dataset(clutter_reference, **{**CLUTTER, key: change[key]})


def test_distractor_sets_are_disjoint_and_ranges_expand():
    from dense_descriptor_grasp.data.render import DISTRACTOR_SETS, draw_distractors, expand_distractors

    def members(name):
        out = set()
        for entry, _ in expand_distractors([name]):
            if entry.startswith("random_urdfs/") and "-" in entry:
                lo, hi = (int(x) for x in entry.split("/")[1].split("-"))
                out |= {f"random_urdfs/{i:03d}" for i in range(lo, hi + 1)}
            else:
                out.add(entry)
        return out

    train, held_out = members("train"), members("eval")
    assert not train & held_out and "duck" not in train | held_out
    assert {"lego", "jenga", "domino", "cube", "sphere", "soccerball", "random_urdfs/123"} <= train
    assert {"teddy", "random_urdfs/777"} <= held_out and len(held_out) > 500
    assert expand_distractors(["lego", "lego", "random_urdfs/010-012"]) == [["lego", 2], ["random_urdfs/010-012", 1]]
    specs = draw_distractors(np.random.default_rng(0), expand_distractors(["random_urdfs/010-012"]), (5, 5))
    assert len(specs) == 5 and {s.name for s in specs} <= {"random_urdfs/010", "random_urdfs/011", "random_urdfs/012"}
    counts = [len(draw_distractors(np.random.default_rng(i), expand_distractors(["train"]), (2, 4))) for i in range(60)]
    assert set(counts) == {2, 3, 4}
    for bad in ("random_urdfs/5-1000", "no_such_object", "random_urdfs/1200"):
        with pytest.raises(ValueError, match=bad.split("-")[0].split("/")[-1]):
            expand_distractors([bad])
    assert set(DISTRACTOR_SETS) == {"train", "eval"}


def test_distractors_are_placed_around_the_target_at_table_top_size():
    from dense_descriptor_grasp.data.render import draw_distractors, expand_distractors, sample_scene
    from dense_descriptor_grasp.objects import resolve_object
    from dense_descriptor_grasp.data.render import _object_vertices_local

    cfg = RenderConfig.training(width=64, height=48)
    cache, gaps, sizes = {}, [], []
    for s in range(30):
        rng = np.random.default_rng([9, s])
        plan = sample_scene(rng, [resolve_object("duck")], cfg, cache, None,
                            draw_distractors(rng, expand_distractors(["train", "eval"]), (3, 3)))
        pts = []
        for o in plan.objects:
            v = _object_vertices_local(o.spec, cache)
            pts.append(v @ o.T_world_object[:3, :3].T + o.T_world_object[:3, 3])
        assert plan.objects[0].role == "target" and all(o.role == "distractor" for o in plan.objects[1:])
        assert [o.mask_value for o in plan.objects] == list(range(1, len(plan.objects) + 1))
        for p in pts:
            assert abs(p[:, 2].min()) < 1e-9                                   # standing on the plane
        for o, p in zip(plan.objects[1:], pts[1:]):
            # largest extent of the distractor's own bounding box (its upright / tumble turns are axis permutations)
            sizes.append(float(np.ptp(_object_vertices_local(o.spec, cache), axis=0).max()))
            gaps.append(float(np.min(np.linalg.norm(p[:, None, :2] - pts[0][None, ::7, :2], axis=2))))
        # the scene's camera target is the duck alone
        assert np.allclose(plan.center, 0.5 * (pts[0].min(0) + pts[0].max(0)))
    assert min(sizes) >= cfg.distractor_size[0] - 1e-9 and max(sizes) <= cfg.distractor_size[1] + 1e-9
    assert np.mean(np.array(gaps) < 0.02) > 0.3          # many distractors right next to the target (occluders)
    assert max(gaps) < 0.25


def test_cli_flags(tmp_path, capsys):
    out = str(tmp_path / "c")
    args = ["--out", out, "--objects", "duck", "--distractors", "lego", "random_urdfs/000-009",
            "--distractors-per-scene", "1", "1", "--views", "2", "--width", "64", "--height", "48", "--fov", "45",
            "--roll", "0", "--elevation", "40", "50", "--no-progress"]
    assert main(args) == 0
    cam = json.load(open(os.path.join(out, "camera", "000000.json")))
    assert [o["role"] for o in cam["objects"]] == ["target", "distractor"]
    assert cam["K"][1][1] == pytest.approx(24 / math.tan(math.radians(22.5)))   # one --fov value: fixed
    assert main(["--out", str(tmp_path / "d"), "--objects", "duck", "duck", "--objects-per-scene", "2",
                 "--distractors", "lego", "--no-progress"]) == 2
    assert "exactly one target" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "e"), "--distractors", "nothing_here", "--no-progress"]) == 2
    assert "nothing_here" in capsys.readouterr().err
