"""generate_dataset: byte-identical per seed, resumes after an interruption, refuses mismatched arguments."""
import json
import os

import pytest

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
