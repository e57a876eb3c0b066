"""Dense descriptor network (ResNet-34 trunk, descriptor projection, keypoint heads) and its checkpoint format."""
from .checkpoint import CheckpointError, load_checkpoint, load_model, model_identity, save_checkpoint
from .network import DenseDescriptorNet, spatial_expectation

__all__ = [
    "DenseDescriptorNet",
    "spatial_expectation",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "model_identity",
    "CheckpointError",
]
