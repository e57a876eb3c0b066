"""dense_descriptor_grasp: dense object descriptors trained on the KeypointNet task, and grasping with them.

Only ``dense_descriptor_grasp.nodes`` (and the bringup) import rclpy; everything else is plain numpy/torch.
"""
__version__ = "0.1.0"
