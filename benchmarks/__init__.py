"""Benchmarks of dense_descriptor_grasp, one command each (see benchmarks/README.md).

- ``python -m benchmarks.training_memory``: peak process memory and step time of one training step, keypoint method
  vs the NT-Xent baseline, over the descriptor dimension D (the paper's Table 1 on a CPU).
- ``python -m benchmarks.inference_speed``: descriptor images per second vs the bare ResNet-34 trunk.
- ``python -m benchmarks.run_all``: both (``make benchmarks``).
"""
