"""Checkpoint format: round trip, identity, RNG state, clear errors on missing / foreign / corrupt / old files."""
import os
import random

import numpy as np
import pytest
import torch

from dense_descriptor_grasp.model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_model,
    model_identity,
    save_checkpoint,
)
from dense_descriptor_grasp.model.network import DenseDescriptorNet
from dense_descriptor_grasp.training.reproducibility import capture_rng_state, restore_rng_state


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    net = DenseDescriptorNet(descriptor_dim=6, num_keypoints=4, output_stride=16)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    # one step so the optimizer has state and BN running stats moved
    net(torch.rand(2, 3, 64, 64))["uv"].sum().backward()
    opt.step()
    sched.step()
    path = tmp_path_factory.mktemp("ckpt") / "run" / "last.pt"
    save_checkpoint(path, net, opt, sched, step=7, config={"train_input_size": [64, 64]}, metadata={"dataset": "x"})
    return net.eval(), path


def test_round_trip_gives_identical_descriptors_and_config(saved):
    net, path = saved
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == net.config
    rgb = torch.rand(1, 3, 64, 80)
    with torch.inference_mode():
        assert torch.equal(loaded.descriptors(rgb), net.descriptors(rgb))
        assert torch.equal(loaded(rgb)["uv"], net(rgb)["uv"])
    assert loaded.identity == model_identity(net) and len(loaded.identity) == 16
    assert loaded.checkpoint_info["step"] == 7
    assert loaded.checkpoint_info["config"]["train_input_size"] == [64, 64]
    assert loaded.checkpoint_info["metadata"]["dataset"] == "x" and "created" in loaded.checkpoint_info["metadata"]
    ckpt = load_checkpoint(path)
    assert ckpt["format_version"] == FORMAT_VERSION and ckpt["optimizer_state"]["state"] and ckpt["scheduler_state"]
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary files left


def test_identity_changes_with_weights_and_config(saved):
    net, _ = saved
    other = DenseDescriptorNet(descriptor_dim=6, num_keypoints=4, output_stride=16)
    other.load_state_dict(net.state_dict())
    assert model_identity(other) == model_identity(net)
    with torch.no_grad():
        other.projection.bias[0] += 1e-6
    assert model_identity(other) != model_identity(net)


def test_clear_errors(saved, tmp_path):
    _, path = saved
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(CheckpointError, match="junk.pt is not a checkpoint"):
        load_model(junk)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a dense_descriptor_grasp.checkpoint"):
        load_model(foreign)
    ckpt = torch.load(path, weights_only=True)
    ckpt["format_version"] = 99
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_model(old)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_state"]["projection.bias"] = ckpt["model_state"]["projection.bias"] + 1.0
    tampered = tmp_path / "tampered.pt"
    torch.save(ckpt, tampered)
    with pytest.raises(CheckpointError, match="identity"):
        load_model(tampered)
    with pytest.raises(TypeError, match="JSON-safe"):
        save_checkpoint(tmp_path / "x.pt", saved[0], config={"size": np.int64(3)})


def test_network_does_not_import_the_checkpoint_module():
    """model/network.py is below model/checkpoint.py: no import runs back up (load_model is the one loader)."""
    import ast
    import inspect

    from dense_descriptor_grasp.model import network

    imported = {n.module for n in ast.walk(ast.parse(inspect.getsource(network))) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.endswith("checkpoint") for m in imported), imported
    assert not hasattr(DenseDescriptorNet, "from_checkpoint")


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    path = save_checkpoint(tmp_path / "rng.pt", DenseDescriptorNet(descriptor_dim=4, num_keypoints=0, method="ntxent"),
                           rng_state=capture_rng_state())
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    restore_rng_state(load_checkpoint(path)["rng_state"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_random_bytes_are_not_a_checkpoint_and_torch_advice_is_not_passed_on(tmp_path):
    """Issue 12, item 7: torch's weights_only failure advises re-loading with weights_only=False ("can result in
    arbitrary code execution"); the error must only say the file is not a checkpoint, on one line."""
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="junk.pt is not a checkpoint") as info:
        load_model(junk)
    text = str(info.value)
    assert "weights_only" not in text and "arbitrary code" not in text and "\n" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__     # no chained torch message either
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is not a checkpoint: the file is empty"):
        load_model(empty)


def test_checkpoints_record_the_decoder_and_pre_decoder_checkpoints_still_load(tmp_path):
    torch.manual_seed(1)
    fpn = DenseDescriptorNet(descriptor_dim=5, num_keypoints=0, method="ntxent", output_stride=4, decoder="fpn",
                             decoder_channels=16).eval()
    path = save_checkpoint(tmp_path / "fpn.pt", fpn, step=1)
    ckpt = load_checkpoint(path)
    assert ckpt["model_config"]["decoder"] == "fpn" and ckpt["model_config"]["decoder_channels"] == 16
    back = load_model(path)
    x = torch.rand(1, 3, 64, 80)
    assert back.decoder is not None and torch.equal(back.descriptors(x), fpn.descriptors(x))
    # a checkpoint written before the decoder existed: no decoder keys in its model config -> decoder "none",
    # same identity as stored (reference files made with it stay valid)
    old = DenseDescriptorNet(descriptor_dim=5, num_keypoints=3, output_stride=32).eval()
    old_path = save_checkpoint(tmp_path / "old.pt", old, step=1)
    raw = torch.load(old_path, map_location="cpu", weights_only=False)
    assert "decoder" not in raw["model_config"]
    loaded = load_model(old_path)
    assert loaded.decoder is None and loaded.identity == raw["model_identity"]
    # a config whose decoder the weights do not fit fails with a message naming the file
    raw["model_config"] = {**raw["model_config"], "decoder": "fpn", "output_stride": 4}
    torch.save(raw, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match="mixed.pt"):
        load_model(tmp_path / "mixed.pt")
