"""Training: KeypointNet-task losses, the NT-Xent baseline loss, config dataclasses and the `train_model` CLI.

tensorboard is imported only by `training.run_log` (lazily, when a run starts with `train.tensorboard`).
"""
