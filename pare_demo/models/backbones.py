"""Backbones built by name from timm, never downloading weights.

Every backbone returns one feature map at 1/4 of the input resolution (56 x 56 for a
224 px crop) or, for the fast CPU backbone, 1/8, which the PARE head reads.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import timm
import torch
from torch import nn

BACKBONES: dict[str, Callable[[], "Backbone"]] = {}


def register(name: str):
    def add(factory):
        BACKBONES[name] = factory
        return factory
    return add


class Backbone(nn.Module):
    out_channels: int
    stride: int
    # Pretrained on MediaPipe's crops: the predictor may crop where BlazePose's landmark
    # network puts the body (Predictor.can_refine).
    mediapipe_crops: bool = False
    # State-dict keys (below the backbone) that older checkpoints carry and this backbone no
    # longer has: ignored when loading.
    legacy_keys: frozenset[str] = frozenset()


def _upsample_block(channels: int, times: int) -> nn.Sequential:
    """`times` x (2x bilinear upsampling with aligned corners, 3x3 conv, BN, ReLU):
    official PARE's `-conv` way of bringing an HRNet branch up to the highest resolution."""
    layers: list[nn.Module] = []
    for _ in range(times):
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                   nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class HRNetConv(Backbone):
    """HRNet with its four stage-4 branches brought to 1/4 resolution and concatenated
    (official PARE's `hrnet_w32-conv`). Parameter names match the official checkpoints."""

    stride = 4

    def __init__(self, variant: str = "hrnet_w32"):
        super().__init__()
        net = timm.create_model(variant, pretrained=False, features_only=True,
                                feature_location="", out_indices=(1, 2, 3, 4))
        # Adopt timm's modules under their own names (conv1, layer1, stage2, ...): the
        # official checkpoints use the same names.
        self.net = net
        widths = net.feature_info.channels()
        self.upsample_stage_2 = _upsample_block(widths[1], 1)
        self.upsample_stage_3 = _upsample_block(widths[2], 2)
        self.upsample_stage_4 = _upsample_block(widths[3], 3)
        self.out_channels = sum(widths)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x1, x2, x3, x4 = self.net(images)
        return torch.cat([x1, self.upsample_stage_2(x2), self.upsample_stage_3(x3),
                          self.upsample_stage_4(x4)], dim=1)


class ResNetUpsampled(Backbone):
    """A timm ResNet's last stage (1/32), as in the PARE paper's ResNet-50 ablation; the
    head brings it to 1/4 with deconvolutions (see PareHeadConfig.deconv_layers)."""

    stride = 32

    def __init__(self, variant: str = "resnet50"):
        super().__init__()
        self.net = timm.create_model(variant, pretrained=False, features_only=True, out_indices=(4,))
        self.out_channels = self.net.feature_info.channels()[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)[0]


class MobileNetFused(Backbone):
    """Fast CPU backbone: MobileNetV3 features at 1/8, 1/16 and 1/32 resized to 1/8 and
    concatenated. Chosen for speed on 2 CPU cores (see pare_demo.benchmark)."""

    stride = 8

    def __init__(self, variant: str = "mobilenetv3_large_100"):
        super().__init__()
        self.net = timm.create_model(variant, pretrained=False, features_only=True, out_indices=(2, 3, 4))
        widths = self.net.feature_info.channels()
        self.reduce = nn.ModuleList(
            [nn.Identity()] + [nn.Sequential(nn.Conv2d(w, 64, 1, bias=False), nn.BatchNorm2d(64),
                                             nn.ReLU(inplace=True)) for w in widths[1:]])
        self.out_channels = widths[0] + 64 * (len(widths) - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.net(images)
        size = feats[0].shape[-2:]
        fused = [feats[0]] + [nn.functional.interpolate(r(f), size=size, mode="nearest")
                              for r, f in zip(list(self.reduce)[1:], feats[1:])]
        return torch.cat(fused, dim=1)


class BlazePoseTrunk(Backbone):
    """BlazePose GHUM's landmark network (MediaPipe's pose_landmark_full, converted by
    pare_demo.blazepose.convert), pretrained for 2D pose on real photos: its 64x64 decoder
    features with its 39 landmark heatmaps (logits) last, average-pooled to 1/8 so the head
    costs a quarter. Expects 256 px RGB crops in [0, 1]. Only the ops of those two outputs:
    the landmark regressor that refines crops is the original network's, in the predictor
    (pare_demo.blazepose.pose_landmarks), whatever training does to this trunk."""

    stride = 8
    heatmap_channels = 39
    mediapipe_crops = True
    FEATURES = ("decoder_features", "heatmaps")

    def __init__(self):
        super().__init__()
        from pare_demo import paths
        from pare_demo.blazepose.graph import load_graph

        self.net = load_graph(paths.BLAZEPOSE_LANDMARKS, outputs=self.FEATURES)
        self.out_channels = 48 + self.heatmap_channels

    @cached_property
    def legacy_keys(self) -> frozenset[str]:
        """The network's other ops: checkpoints from before the landmark regressor left the
        trunk carry its weights."""
        from pare_demo import paths

        data = torch.load(paths.BLAZEPOSE_LANDMARKS, map_location="cpu", weights_only=True)
        return frozenset(f"net.{k}" for k in data["state_dict"]) - set(self.state_dict())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net(images, self.FEATURES)
        return nn.functional.avg_pool2d(torch.cat([out[name] for name in self.FEATURES], 1), 2)


@register("hrnet_w32")
def hrnet_w32() -> Backbone:
    return HRNetConv("hrnet_w32")


@register("resnet50")
def resnet50() -> Backbone:
    return ResNetUpsampled("resnet50")


@register("mobilenetv3")
def mobilenetv3() -> Backbone:
    return MobileNetFused("mobilenetv3_large_100")


@register("blazepose")
def blazepose() -> Backbone:
    return BlazePoseTrunk()


def build_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]()
