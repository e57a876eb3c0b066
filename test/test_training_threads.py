"""train.num_threads auto: the ThreadTuner's probes and switches (fed step times), and a run that uses it."""
import itertools
import os

import pytest
import torch

from dense_descriptor_grasp.training.config import TrainConfig
from dense_descriptor_grasp.training.threads import ThreadTuner


def _simulate(tuner, seconds_for, steps):
    """Run the tuner for ``steps`` steps where a step with t threads takes ``seconds_for(step, t)``."""
    used = []
    for step in range(1, steps + 1):
        t = tuner.threads_for(step)
        used.append(t)
        tuner.record(step, t, seconds_for(step, t))
    return used


def test_quiet_machine_switches_to_all_cores_after_the_first_probe():
    tuner = ThreadTuner(high=2, probe_steps=8, warmup=2, first_probe=10, gap=50)
    used = _simulate(tuner, lambda s, t: 0.30 if t == 1 else 0.22, 400)
    assert used[:9] == [1] * 9                      # starts with one thread
    switch = tuner.decisions[0]
    assert switch[1] == 2 and switch[0] < 20        # the first probe switches
    assert used[-1] == 2 and used.count(2) > 0.9 * len(used)
    assert tuner.steps_at == {1: used.count(1), 2: used.count(2)}


def test_loaded_machine_stays_on_one_thread_and_probes_ever_more_rarely():
    tuner = ThreadTuner(high=2, probe_steps=8, warmup=2, first_probe=10, gap=50, max_gap=800)
    used = _simulate(tuner, lambda s, t: 0.30 if t == 1 else 1.2, 2300)
    assert used[-1] == 1 and all(d[1] == 1 for d in tuner.decisions)
    probes = used.count(2)
    assert probes == 8 * len(tuner.decisions) and len(tuner.decisions) <= 6   # 10, 110, 310, 710, 1510 ...
    assert probes / len(used) < 0.03


def test_load_that_comes_later_sends_the_run_back_to_one_thread():
    tuner = ThreadTuner(high=2, probe_steps=8, warmup=2, first_probe=10, gap=50, max_gap=200)
    used = _simulate(tuner, lambda s, t: (0.30 if t == 1 else 0.22) if s < 500 else (0.35 if t == 1 else 1.5), 1500)
    assert used[300] == 2 and used[-1] == 1
    assert [d[1] for d in tuner.decisions if d[1] != 2][:1] == [1]


def test_probe_warmup_steps_do_not_count_and_disabled_tuner_keeps_one_setting():
    tuner = ThreadTuner(high=2, probe_steps=6, warmup=2, first_probe=8, gap=50)
    # the probe's first two steps are slow (thread start-up), the rest fast: it switches
    times = {9: 5.0, 10: 5.0}
    _simulate(tuner, lambda s, t: times.get(s, 0.2) if t == 2 else 0.3, 20)
    assert tuner.current == 2
    single = ThreadTuner(high=1)
    assert not single.enabled and _simulate(single, lambda s, t: 0.1, 30) == [1] * 30
    with pytest.raises(ValueError, match="warmup"):
        ThreadTuner(high=2, probe_steps=2, warmup=2)


def test_auto_threads_run_records_the_thread_count_of_every_step(tmp_path, make_pair_batch):
    old = torch.get_num_threads()
    try:
        cfg = TrainConfig.from_dict({
            "model": {"descriptor_dim": 4, "num_keypoints": 0, "output_stride": 32, "method": "ntxent"},
            "train": {"steps": 14, "out": str(tmp_path / "run"), "tensorboard": False, "num_threads": "auto"},
        })
        from dense_descriptor_grasp.training.train import run_training

        batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
        summary = run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
        import json
        history = json.loads((tmp_path / "run" / "history.json").read_text())
        threads = [row["threads"] for row in history]
        cores = len(os.sched_getaffinity(0))
        assert threads[:9] == [1] * 9                              # one thread until the first probe (step 10)
        assert set(threads[9:]) == ({cores} if cores > 1 else {1})  # the probe: all cores
        assert sum(summary["steps_per_thread_count"].values()) == 14
        assert torch.get_num_threads() == old                     # the caller's setting is back
    finally:
        torch.set_num_threads(old)
    with pytest.raises(ValueError, match="train.num_threads"):
        TrainConfig.from_dict({"train": {"num_threads": "many"}})
    assert TrainConfig.from_dict({"train": {"num_threads": 2}}).train.num_threads == 2
