"""The object registry (dense_descriptor_grasp/objects.py): one entry per object for the generator, the grasp
judge, the sim camera, the evaluation, the demo and the benchmarks."""
import math
import subprocess
import sys

import numpy as np
import pytest

from dense_descriptor_grasp.objects import (OBJECT_LIBRARY, ObjectSpec, named_parts, object_parts, part_world,
                                            resolve_object)


def test_the_duck_as_both_former_registries_had_it():
    spec = resolve_object("duck")
    assert spec.path.endswith("duck_vhacd.urdf") and spec.scale == 1.0 and not spec.tumble
    assert spec.upright_rpy == (math.pi / 2, 0.0, 0.0)
    assert np.allclose(spec.upright @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])   # the model's +y is world up
    assert spec.default_part == "head_top"
    assert list(named_parts("duck")) == ["head_top", "beak_tip", "tail", "left_side", "right_side", "chest"]
    assert np.array_equal(named_parts("duck")["head_top"], [-0.0166, 0.0820, 0.0027])
    # the reference grasp at the head: approach straight down in the upright pose, fingers across the head (z)
    R = np.asarray(spec.grasp_rotations["head_top"])
    assert np.allclose(spec.upright @ R[:, 2], [0, 0, -1]) and np.allclose(R[:, 1], [0, 0, 1])


def test_parts_top_and_scale():
    parts = object_parts("duck")
    assert set(parts) == set(named_parts("duck")) | {"top"}
    assert 0.075 < parts["top"][1] < 0.09                         # the top of the upright duck is its +y extreme
    assert np.allclose(object_parts("duck", 2.0)["tail"], 2.0 * parts["tail"])
    assert list(named_parts("teddy")) == ["top"]                  # no named parts: only the top centre
    assert list(named_parts("cube_small")) == ["top_center", "corner"]
    T = np.eye(4)
    T[:3, 3] = (0.1, 0.2, 0.0)
    assert np.allclose(part_world("duck", T), parts["head_top"] + [0.1, 0.2, 0.0])
    with pytest.raises(ValueError, match="no part 'wing_tip'"):
        part_world("duck", T, "wing_tip")


def test_names_and_paths(tmp_path):
    assert resolve_object("lego").tumble and not resolve_object("mug").tumble
    assert resolve_object("random_urdfs/007").path.endswith("007.urdf") and resolve_object("random_urdfs/007").tumble
    inside = resolve_object("objects/mug.urdf")                   # a path inside pybullet_data
    assert inside.name == "objects/mug.urdf" and inside.scale == 1.0 and inside.default_part == "top"
    own = tmp_path / "thing.urdf"
    own.write_text("<robot name='thing'/>")
    assert resolve_object(str(own)) == ObjectSpec("thing", str(own), 1.0, (0.0, 0.0, 0.0))
    for bad in ("no_such_thing", str(tmp_path / "missing.urdf")):
        with pytest.raises(ValueError, match=bad.split("/")[-1]):
            resolve_object(bad)
    assert all(spec.name == name for name, spec in OBJECT_LIBRARY.items())


def test_reading_the_registry_loads_neither_torch_nor_the_grasp_judge():
    code = ("import sys; from dense_descriptor_grasp import objects; objects.named_parts('duck'); "
            "import dense_descriptor_grasp.data.render; "
            "print('torch' in sys.modules, 'dense_descriptor_grasp.sim.grasp_sim' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["False", "False"]
