"""`DenseDescriptorNet`: a ResNet-34 trunk, a 1x1 descriptor projection and the KeypointNet heads (paper eq. 1-4).

Data flow (``s`` = output stride, ``h = ceil(H / s)``, ``w = ceil(W / s)``):

```
decoder="none" (the paper's setting; s = 32, or 16 / 8 with dilated last stages):
rgb (B,3,H,W) in [0,1] -> ImageNet normalisation -> ResNet-34 trunk (no avgpool / fc) -> (B,512,h,w)
    input="rgbd": the trunk's first convolution reads 3 + 4 channels, RGB and geometry_channels(depth, K)
    (surface normals and log depth relative to the image's median), so geometry as well as colour tells parts apart
    -> 1x1 conv "projection" (the paper's identity layer)                          -> features (B,D,h,w)
decoder="fpn" (s = 4 or 8): a feature pyramid over the trunk's stages (Lin et al. 2017, as torchvision's
FeaturePyramidNetwork): layer1..layer4 (strides 4, 8, 16, 32) -> 1x1 lateral convs to C channels, top-down
nearest-neighbour upsampling + sum down to stride s, one 3x3 conv + BN + ReLU -> 1x1 projection -> (B,D,h,w)
method="keypoint" (this paper):
    features -> 1x1 conv -> keypoint logits (B,N,h,w) -> bilinear to (H,W) -> softmax over H*W -> prob (B,N,H,W)
    features -> 1x1 conv -> softplus -> depth map (B,N,h,w) -> bilinear to (H,W)
    eq. 4: uv = sum prob * (u, v);  depth = sum prob * depth map
method="ntxent" (Dense Object Nets baseline):
    features (B,D,h,w), sampled by the pixelwise NT-Xent loss at the correspondences (bilinear, the same values as
    the upsampled image there; the (B,D,H,W) image is never built in training)
descriptors(rgb) (eq. 1, inference, both methods):
    features -> bilinear to (H,W) or out_size -> optional L2 normalisation over D
foreground=True (either method): decoded features (before the projection) -> 1x1 conv -> logits (B,1,h,w) of
    "this pixel shows the target"; descriptors(..., with_foreground=True) also returns sigmoid(bilinear logits)
coarse_heads=True (decoder "fpn", training only): layer3 and layer4 (strides 16, 32) -> one 1x1 conv each to D
    channels -> forward()'s "coarse": [(B,D,H/16,W/16), (B,D,H/32,W/32)], trained by losses.coords_deep (deep
    supervision of the geometry term: the coarse levels alone must tell which point of the object they see);
    descriptors() and the nodes do not read them
```

The keypoint heads read the D-dim projection, not the 512-channel trunk output: the descriptors are what the
keypoint losses train. Neither method builds the D-channel full-resolution descriptor image during training.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DenseDescriptorNet", "FeaturePyramidDecoder", "IMAGENET_MEAN", "IMAGENET_STD", "METHODS", "DECODERS",
           "NORM_STATISTICS",
           "INPUTS", "OUTPUT_STRIDES", "DECODER_STRIDES", "spatial_expectation", "geometry_channels"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METHODS = ("keypoint", "ntxent")
DECODERS = ("none", "fpn")
INPUTS = ("rgb", "rgbd")  # rgbd: RGB + the depth image's geometry_channels (surface normals, relative depth)
GEOMETRY_CHANNELS = 4
OUTPUT_STRIDES = (8, 16, 32)  # decoder "none" (dilated trunk)
NORM_STATISTICS = ("running", "image")  # what BatchNorm normalises with at inference (eval mode)
DECODER_STRIDES = (2, 4, 8)  # decoder "fpn" (2: also the stem's stride-2 output, for thin parts)
# which of layer2, layer3, layer4 trade their stride 2 for dilation (torchvision's replace_stride_with_dilation
# semantics; torchvision's BasicBlock refuses dilation, so _dilate_stages does it for ResNet-34)
_DILATION = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}


def _upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear upsampling with ``align_corners=False``: feature cell ``i`` sits at pixel ``(i + 0.5) s - 0.5``,
    consistent with pixel centres at integer coordinates."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)


def spatial_expectation(logits: torch.Tensor, depth_map: torch.Tensor, size: Sequence[int]):
    """Eq. 4: expected pixel and depth of each keypoint under its spatial probability map.

    Args:
        logits: ``(B, N, h, w)`` spatial-probability logits.
        depth_map: ``(B, N, h, w)`` positive depth per keypoint.
        size: ``(H, W)`` image size the maps are upsampled to.
    Returns:
        ``uv (B, N, 2)`` expected ``(u, v)`` in pixels, ``depth (B, N)`` metres, ``prob (B, N, H, W)`` summing to 1
        over ``H x W``.
    """
    H, W = int(size[0]), int(size[1])
    B, N = logits.shape[:2]
    logits_full = _upsample(logits, (H, W))
    prob = torch.softmax(logits_full.reshape(B, N, H * W), dim=-1).reshape(B, N, H, W)
    us = torch.arange(W, dtype=prob.dtype, device=prob.device)
    vs = torch.arange(H, dtype=prob.dtype, device=prob.device)
    u = (prob.sum(dim=2) * us).sum(-1)  # marginal over rows, then expectation over columns
    v = (prob.sum(dim=3) * vs).sum(-1)
    depth = (prob * _upsample(depth_map, (H, W))).sum(dim=(2, 3))
    return torch.stack([u, v], dim=-1), depth, prob


def geometry_channels(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """What an ``input="rgbd"`` network sees of the depth image, next to the colour: ``(B, 4, H, W)``.

    Channels 0-2: the unit surface normal in the camera frame (:func:`~..geometry.camera.surface_normals`; zeros
    where the depth is missing or jumps). Channel 3: ``log(z / median z)`` over the image's valid depth, clipped to
    [-1, 1] (0 where missing): nearer or farther than the scene, independent of the camera's distance.

    Args:
        depth: ``(B, H, W)`` or ``(B, 1, H, W)`` metres, 0 / non-finite = missing.
        K: ``(B, 3, 3)`` or ``(3, 3)`` intrinsics of that depth image.
    """
    from dense_descriptor_grasp.geometry.camera import surface_normals

    if depth.dim() == 4 and depth.shape[1] == 1:
        depth = depth[:, 0]
    if depth.dim() != 3:
        raise ValueError(f"geometry_channels: depth must be (B, H, W) or (B, 1, H, W), got {tuple(depth.shape)}")
    depth = depth.float()
    depth = torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.zeros_like(depth))
    K = torch.as_tensor(K, dtype=torch.float32, device=depth.device)
    if K.shape[-2:] != (3, 3) or (K.dim() == 3 and K.shape[0] != depth.shape[0]) or K.dim() not in (2, 3):
        raise ValueError(f"geometry_channels: K must be (3, 3) or (B, 3, 3) for depth {tuple(depth.shape)}, "
                         f"got {tuple(K.shape)}")
    normals = surface_normals(depth, K).permute(0, 3, 1, 2)
    valid = depth > 0
    rel = torch.zeros_like(depth)
    for b in range(depth.shape[0]):
        if valid[b].any():
            median = depth[b][valid[b]].median()
            rel[b] = torch.where(valid[b], torch.log(depth[b].clamp_min(1e-6) / median).clamp(-1.0, 1.0), rel[b])
    return torch.cat([normals, rel[:, None]], dim=1)


class DenseDescriptorNet(nn.Module):
    """Dense descriptor network; see the module docstring for the data flow.

    Args:
        descriptor_dim: D, descriptor channels, 3..512.
        num_keypoints: N, keypoints of the KeypointNet task (>= 1; the pose loss needs >= 3). Ignored (0 heads)
            for ``method="ntxent"``.
        output_stride: stride of the descriptor features. Decoder "none": 32 (paper), 16 or 8 (the last ResNet
            stages dilated instead of strided). Decoder "fpn": 4 or 8.
        decoder: "none" (the paper: the projected trunk output) or "fpn" (feature pyramid with skip connections).
        decoder_channels: C, channels of the pyramid levels (decoder "fpn").
        method: ``"keypoint"`` (this paper) or ``"ntxent"`` (Dense Object Nets baseline).
        pretrained: start the trunk from torchvision's ImageNet weights (downloads them once; never in tests).
        weights_path: a local ResNet-34 state dict (``.pth``) to start the trunk from instead of downloading.
        depth_init: metres; the depth head's bias is set so that its initial output is about this value.
        input: "rgb" (the paper) or "rgbd": the first convolution also reads :func:`geometry_channels` of the
            depth image, so every call then needs ``depth`` and ``K`` (``forward``, ``features``, ``descriptors``).
        norm_statistics: what the BatchNorm layers normalise with in ``eval()`` mode: ``"running"`` (PyTorch's
            default: the running averages of training) or ``"image"`` (each image's own statistics, computed image
            by image, as training with one pair per batch sees them). Training mode always uses the batch's.
    """

    def __init__(
        self,
        descriptor_dim: int = 16,
        num_keypoints: int = 8,
        output_stride: int = 32,
        method: str = "keypoint",
        pretrained: bool = False,
        weights_path: Optional[str] = None,
        depth_init: float = 0.5,
        decoder: str = "none",
        decoder_channels: int = 128,
        input: str = "rgb",
        foreground: bool = False,
        norm_statistics: str = "running",
        coarse_heads: bool = False,
    ):
        super().__init__()
        if norm_statistics not in NORM_STATISTICS:
            raise ValueError(f"norm_statistics must be one of {NORM_STATISTICS}, got {norm_statistics!r}")
        if input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        strides = OUTPUT_STRIDES if decoder == "none" else DECODER_STRIDES
        if output_stride not in strides:
            raise ValueError(f"output_stride must be one of {strides} with decoder {decoder!r}, got {output_stride!r}")
        if decoder == "fpn" and not (isinstance(decoder_channels, int) and 8 <= decoder_channels <= 512):
            raise ValueError(f"decoder_channels must be an int in 8..512, got {decoder_channels!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not (isinstance(descriptor_dim, int) and 3 <= descriptor_dim <= 512):
            raise ValueError(f"descriptor_dim must be an int in 3..512, got {descriptor_dim!r}")
        if method == "keypoint" and not (isinstance(num_keypoints, int) and num_keypoints >= 1):
            raise ValueError(f"num_keypoints must be an int >= 1 for method 'keypoint', got {num_keypoints!r}")
        if not (depth_init > 0 and math.isfinite(depth_init)):
            raise ValueError(f"depth_init must be a positive number of metres, got {depth_init!r}")
        if not isinstance(foreground, bool):
            raise ValueError(f"foreground must be True or False, got {foreground!r}")
        if not isinstance(coarse_heads, bool):
            raise ValueError(f"coarse_heads must be True or False, got {coarse_heads!r}")
        if coarse_heads and decoder != "fpn":
            raise ValueError("coarse_heads needs decoder 'fpn' (they read the trunk stages the pyramid reads)")
        self.method = method
        self.descriptor_dim = int(descriptor_dim)
        self.num_keypoints = int(num_keypoints) if method == "keypoint" else 0
        self.output_stride = int(output_stride)
        self.depth_init = float(depth_init)
        self.decoder_name = decoder
        self.decoder_channels = int(decoder_channels) if decoder == "fpn" else 0
        self.input = input
        self.norm_statistics = norm_statistics

        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.trunk = _resnet34_trunk(self.output_stride if decoder == "none" else 32, pretrained, weights_path)
        if input == "rgbd":
            self.trunk[0] = _widen_first_conv(self.trunk[0], 3 + GEOMETRY_CHANNELS)
        if decoder == "fpn":
            self.decoder = FeaturePyramidDecoder((64, 64, 128, 256, 512), self.decoder_channels, self.output_stride)
            self.projection = nn.Conv2d(self.decoder_channels, self.descriptor_dim, kernel_size=1)
        else:
            self.decoder = None
            self.projection = nn.Conv2d(512, self.descriptor_dim, kernel_size=1)
        if method == "keypoint":
            self.keypoint_logits = nn.Conv2d(self.descriptor_dim, self.num_keypoints, kernel_size=1)
            self.keypoint_depth = nn.Conv2d(self.descriptor_dim, self.num_keypoints, kernel_size=1)
            nn.init.normal_(self.keypoint_depth.weight, std=1e-3)
            # softplus(bias) = depth_init
            nn.init.constant_(self.keypoint_depth.bias, math.log(math.expm1(self.depth_init)))
        else:
            self.keypoint_logits = None
            self.keypoint_depth = None
        # the target's silhouette, read from the decoded features (before the projection, so it does not take
        # descriptor channels): lets a search skip pixels the model sees as background or distractors
        self.foreground_logits = nn.Conv2d(self.projection.in_channels, 1, kernel_size=1) if foreground else None
        # deep supervision: D-channel projections of layer3 and layer4 alone (training only, losses.coords_deep)
        self.coarse_projections = nn.ModuleList(
            nn.Conv2d(c, self.descriptor_dim, kernel_size=1) for c in (256, 512)) if coarse_heads else None

    # ------------------------------------------------------------------ config
    @property
    def config(self) -> dict:
        """JSON-safe constructor arguments (without weight sources) plus the input normalisation.

        The decoder keys appear only for decoder "fpn", the input key only for "rgbd" and the foreground key only
        with the foreground head, so a model without them
        has the same config (and :func:`~.checkpoint.model_identity`) as before they existed: old checkpoints and
        references load.
        """
        decoder = {} if self.decoder is None else {"decoder": self.decoder_name,
                                                   "decoder_channels": self.decoder_channels}
        if self.input != "rgb":
            decoder["input"] = self.input
        if self.foreground_logits is not None:
            decoder["foreground"] = True
        if self.coarse_projections is not None:
            decoder["coarse_heads"] = True
        if self.norm_statistics != "running":
            decoder["norm_statistics"] = self.norm_statistics
        return {**decoder,
            "backbone": "resnet34",
            "method": self.method,
            "descriptor_dim": self.descriptor_dim,
            "num_keypoints": self.num_keypoints,
            "output_stride": self.output_stride,
            "depth_init": self.depth_init,
            "image_mean": list(IMAGENET_MEAN),
            "image_std": list(IMAGENET_STD),
        }

    # ------------------------------------------------------------------ parts
    def _check_input(self, rgb: torch.Tensor) -> None:
        if not isinstance(rgb, torch.Tensor) or rgb.dim() != 4 or rgb.shape[1] != 3:
            shape = tuple(rgb.shape) if isinstance(rgb, torch.Tensor) else type(rgb).__name__
            raise ValueError(f"DenseDescriptorNet expects rgb of shape (B, 3, H, W), got {shape}")
        if not rgb.is_floating_point():
            raise ValueError(f"DenseDescriptorNet expects float RGB in [0, 1], got dtype {rgb.dtype}")
        if rgb.shape[2] < self.output_stride or rgb.shape[3] < self.output_stride:
            raise ValueError(
                f"DenseDescriptorNet: image {rgb.shape[2]}x{rgb.shape[3]} is smaller than the output stride {self.output_stride}"
            )

    def network_input(self, rgb: torch.Tensor, depth: Optional[torch.Tensor] = None,
                      K: Optional[torch.Tensor] = None) -> torch.Tensor:
        """What the trunk reads: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 3, H, W)`` ImageNet-normalised, or for
        ``input="rgbd"`` ``(B, 7, H, W)`` with :func:`geometry_channels` of ``depth (B, H, W)`` and ``K (B, 3, 3)``."""
        x = (rgb - self.image_mean.to(rgb.dtype)) / self.image_std.to(rgb.dtype)
        if self.input == "rgb":
            return x
        if depth is None or K is None:
            raise ValueError("DenseDescriptorNet: this model reads depth (input 'rgbd'): pass depth (B, H, W) "
                             "metres and K (B, 3, 3) of the same image")
        if tuple(depth.shape[-2:]) != tuple(rgb.shape[-2:]):
            raise ValueError(f"DenseDescriptorNet: depth {tuple(depth.shape)} and rgb {tuple(rgb.shape)} must "
                             "have the same height and width")
        return torch.cat([x, geometry_channels(depth, K).to(x.dtype)], dim=1)

    def decoded(self, rgb: torch.Tensor, depth: Optional[torch.Tensor] = None,
                K: Optional[torch.Tensor] = None) -> torch.Tensor:
        """What the projection and the foreground head read: ``(B, 3, H, W)`` in [0, 1] -> ``(B, C, h, w)`` (the
        trunk output, C = 512, for decoder "none"; the pyramid's output, C = decoder_channels, for "fpn").

        ``depth (B, H, W)`` metres and ``K (B, 3, 3)`` are read by ``input="rgbd"`` models (ignored otherwise).
        """
        self._check_input(rgb)
        if self.norm_statistics == "image" and not self.training:
            return self._decoded_with_image_statistics(rgb, depth, K)
        return self._decoded(rgb, depth, K)

    def _decoded(self, rgb, depth, K, with_stages: bool = False):
        """:meth:`decoded` (running statistics in eval mode); ``with_stages``: ``(decoded, stages)``, the trunk
        stages the pyramid read (stem, layer1..layer4; decoder "fpn" only)."""
        x = self.network_input(rgb, depth, K)
        if self.decoder is None:
            return self.trunk(x)
        stages = []
        for i, module in enumerate(self.trunk):
            x = module(x)
            if i == 2 or i >= 4:  # the stem after conv1 + BN + ReLU (stride 2), layer1..layer4
                stages.append(x)
        return (self.decoder(stages), stages) if with_stages else self.decoder(stages)

    def _decoded_with_image_statistics(self, rgb, depth, K) -> torch.Tensor:
        """:meth:`decoded` in ``eval()`` mode with every BatchNorm layer normalising by the statistics of the image
        itself (one image at a time, so an image's descriptors do not depend on the others in the batch); the
        running averages are neither used nor changed."""
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [(m.training, m.track_running_stats) for m in norms]
        try:
            for m in norms:
                m.training, m.track_running_stats = True, False   # batch statistics, no running-stat update
            if rgb.shape[0] == 1:
                return self._decoded(rgb, depth, K)
            return torch.cat([self._decoded(rgb[i:i + 1], None if depth is None else depth[i:i + 1],
                                            None if K is None or K.dim() == 2 else K[i:i + 1])
                              for i in range(rgb.shape[0])], dim=0)
        finally:
            for m, (training, track) in zip(norms, saved):
                m.training, m.track_running_stats = training, track

    def features(self, rgb: torch.Tensor, depth: Optional[torch.Tensor] = None,
                 K: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Low-resolution descriptors: ``(B, 3, H, W)`` in [0, 1] -> ``(B, D, h, w)`` (trunk + projection).

        ``depth (B, H, W)`` metres and ``K (B, 3, 3)`` are read by ``input="rgbd"`` models (ignored otherwise).
        """
        return self.projection(self.decoded(rgb, depth, K))

    def _features_and_foreground(self, rgb, depth, K):
        """``(B, D, h, w)`` features and ``(B, 1, h, w)`` foreground logits (None without the head), one pass."""
        x = self.decoded(rgb, depth, K)
        return self.projection(x), (None if self.foreground_logits is None else self.foreground_logits(x))

    def keypoints(self, features: torch.Tensor, size: Sequence[int]) -> dict:
        """Keypoint heads + eq. 4 on low-resolution ``features (B, D, h, w)`` for an image of ``size (H, W)``."""
        if self.method != "keypoint":
            raise RuntimeError("keypoints() needs a model built with method='keypoint'")
        logits = self.keypoint_logits(features)
        depth_map = F.softplus(self.keypoint_depth(features))
        uv, depth, prob = spatial_expectation(logits, depth_map, size)
        return {"uv": uv, "depth": depth, "prob": prob}

    # ------------------------------------------------------------------ public
    def forward(self, rgb: torch.Tensor, depth: Optional[torch.Tensor] = None,
                K: Optional[torch.Tensor] = None) -> dict:
        """Training forward pass.

        ``(B, 3, H, W)`` float RGB in [0, 1] (+ ``depth``, ``K`` for ``input="rgbd"``) ->
          - keypoint: ``{"uv": (B,N,2) pixels, "depth": (B,N) metres, "prob": (B,N,H,W), "features": (B,D,h,w)}``
          - ntxent: ``{"features": (B,D,h,w)}`` (not normalised, not upsampled: the loss samples them at the
            correspondences, :func:`~dense_descriptor_grasp.training.ntxent.sample_descriptors`, so the
            full-resolution D-channel image is never built in training)
          - with the foreground head, also ``"foreground": (B,1,h,w)`` logits of "this pixel shows the target"
          - with the coarse heads, in train() mode, also ``"coarse"``: ``[(B,D,H/16,W/16), (B,D,H/32,W/32)]``
        """
        coarse = None
        if self.coarse_projections is not None and self.training:
            self._check_input(rgb)
            x, stages = self._decoded(rgb, depth, K, with_stages=True)
            feats = self.projection(x)
            foreground = None if self.foreground_logits is None else self.foreground_logits(x)
            coarse = [proj(stage) for proj, stage in zip(self.coarse_projections, stages[-2:])]
        else:
            feats, foreground = self._features_and_foreground(rgb, depth, K)
        size = rgb.shape[-2:]
        out = {"features": feats} if self.method == "ntxent" else {**self.keypoints(feats, size), "features": feats}
        if foreground is not None:
            out["foreground"] = foreground
        if coarse is not None:
            out["coarse"] = coarse
        return out

    def descriptors(self, rgb: torch.Tensor, out_size: Optional[Sequence[int]] = None, normalize: bool = True,
                    depth: Optional[torch.Tensor] = None, K: Optional[torch.Tensor] = None,
                    with_foreground: bool = False):
        """Eq. 1, the dense descriptor image: ``(B, 3, H, W)`` in [0, 1] -> ``(B, D, H', W')``.

        ``(H', W') = out_size`` or the input size; bilinear upsampling of the projected features, then (by default)
        L2 normalisation over D (``depth``, ``K``: as :meth:`features`). The keypoint heads are not evaluated. In
        ``eval()`` mode this runs without autograd (``torch.no_grad``); in ``train()`` mode it follows the caller's
        grad mode. ``with_foreground``: return ``(descriptors, foreground)`` from the same pass, ``foreground``
        ``(B, H', W')`` the probability that a pixel shows the target (bilinear logits, then the sigmoid), or None
        for a model without the foreground head.
        """
        size = tuple(rgb.shape[-2:]) if out_size is None else tuple(int(s) for s in out_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"out_size must be (H, W) with positive entries, got {out_size!r}")
        grad = torch.is_grad_enabled() and self.training
        with torch.set_grad_enabled(grad):
            feats, fg_logits = self._features_and_foreground(rgb, depth, K)
            fg = None if fg_logits is None else torch.sigmoid(_upsample(fg_logits, size))[:, 0]
            if grad:
                desc = _upsample(feats, size)
                desc = F.normalize(desc, dim=1) if normalize else desc
                return (desc, fg) if with_foreground else desc
            # Inference: the same values as F.normalize (to ~1e-7) at a fraction of its cost on a CPU: the sum of
            # squares is accumulated channel by channel over contiguous (H, W) planes and the division is in place
            # (F.normalize's strided reduction over D dominated the extraction time at 640x480, D = 64). The result
            # keeps the standard contiguous (B, D, H, W) layout that numpy consumers expect.
            desc = _upsample(feats, size)
            if normalize:
                sum_sq = torch.zeros_like(desc[:, :1])
                for c in range(desc.shape[1]):
                    channel = desc[:, c:c + 1]
                    sum_sq.addcmul_(channel, channel)
                desc = desc.div_(sum_sq.sqrt_().clamp_min_(1e-12))
        return (desc, fg) if with_foreground else desc


def _resnet34_trunk(output_stride: int, pretrained: bool, weights_path: Optional[str]) -> nn.Sequential:
    """torchvision ResNet-34 without avgpool and fc: ``(B,3,H,W) -> (B,512,H/s,W/s)``."""
    from torchvision.models import ResNet34_Weights, resnet34

    weights = ResNet34_Weights.IMAGENET1K_V1 if (pretrained and weights_path is None) else None
    net = resnet34(weights=weights)
    if weights_path is not None:
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise FileNotFoundError(f"weights_path: no ResNet-34 state dict at {weights_path}") from None
        except Exception as exc:  # noqa: BLE001 - report what failed and where
            raise ValueError(f"weights_path: {weights_path} is not a readable torch state dict ({exc})") from exc
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"weights_path: {weights_path} does not hold a state dict")
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise ValueError(f"weights_path: {weights_path} is not a ResNet-34 state dict ({exc})") from None
        trunk_missing = [k for k in missing if not k.startswith("fc.")]
        if trunk_missing:
            raise ValueError(
                f"weights_path: {weights_path} is not a ResNet-34 state dict (missing {trunk_missing[:3]}...)"
            )
    _dilate_stages(net, _DILATION[output_stride])
    return nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )


def _widen_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` reading ``in_channels``: the old channels keep their weights (ImageNet or random), the
    new ones start as torchvision initialises a ResNet convolution (Kaiming normal, fan out)."""
    wide = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False)
    nn.init.kaiming_normal_(wide.weight, mode="fan_out", nonlinearity="relu")
    with torch.no_grad():
        wide.weight[:, :conv.in_channels] = conv.weight
    return wide


def _dilate_stages(net: nn.Module, replace: Sequence[bool]) -> None:
    """Replace the stride-2 of ``layer2..layer4`` by dilation, in place, as torchvision does for Bottleneck ResNets.

    The first block of a dilated stage keeps the previous dilation (stride 1), the following blocks use the doubled
    one; padding equals dilation so spatial sizes are kept. Weight shapes do not change (ImageNet weights still load).
    """
    dilation = 1
    for layer, dilate in zip((net.layer2, net.layer3, net.layer4), replace):
        if not dilate:
            continue
        previous, dilation = dilation, dilation * 2
        for i, block in enumerate(layer):
            d = previous if i == 0 else dilation
            for conv in (block.conv1, block.conv2):
                conv.stride = (1, 1)
                conv.dilation = (d, d)
                conv.padding = (d, d)
            if block.downsample is not None:
                block.downsample[0].stride = (1, 1)


class FeaturePyramidDecoder(nn.Module):
    """Top-down feature pyramid over ResNet stages: ``[(B,C_i,H/s_i,W/s_i)]`` (strides 2, 4, 8, 16, 32: the stem and
    layer1..layer4) -> ``(B,C,h,w)``.

    ``p_32 = L_32(c_32)``, ``p_s = L_s(c_s) + nearest_up(p_2s)`` down to the output stride, then a 3x3 conv + BN +
    ReLU. ``L`` are 1x1 lateral convs to ``channels``. Levels below the output stride are not used.
    """

    def __init__(self, in_channels: Sequence[int], channels: int, output_stride: int):
        super().__init__()
        strides = (2, 4, 8, 16, 32)
        if output_stride not in strides[:-1]:
            raise ValueError(f"FeaturePyramidDecoder: output_stride must be 2, 4, 8 or 16, got {output_stride}")
        self.first = strides.index(output_stride)  # first stage used
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, kernel_size=1) for c in in_channels[self.first:])
        self.smooth = nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
                                    nn.BatchNorm2d(channels), nn.ReLU(inplace=True))

    def forward(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        stages = list(stages)[self.first:]
        x = self.laterals[-1](stages[-1])
        for lateral, c in zip(reversed(self.laterals[:-1]), reversed(stages[:-1])):
            x = lateral(c) + F.interpolate(x, size=c.shape[-2:], mode="nearest")
        return self.smooth(x)
