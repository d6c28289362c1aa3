"""PARE: backbone + part-attention head, with its architecture config and output type."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from pare_demo.models.backbones import build_backbone
from pare_demo.models.head import HeadConfig, PareHead

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored in every checkpoint as plain data."""
    backbone: str = "hrnet_w32"
    head: HeadConfig = field(default_factory=HeadConfig)
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    body_model: str = "open"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        data = dict(data)
        head = HeadConfig(**data.pop("head", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(head=head, **data)


# Head settings that go with each backbone's output stride.
BACKBONE_HEAD_DEFAULTS = {
    "hrnet_w32": {},
    "resnet50": {"upsample_layers": 3, "conv_layers": 0},
    "mobilenetv3": {"num_filters": 64, "smpl_channels": 32},
    "blazepose": {"num_filters": 64, "smpl_channels": 32, "landmark_prior": 39},
}
# Input size and normalisation each backbone was pretrained with (the rest: ImageNet's, 224 px).
BACKBONE_INPUT_DEFAULTS = {
    "blazepose": {"input_size": 256, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
}


def default_config(backbone: str = "hrnet_w32", **head_overrides) -> ModelConfig:
    head = HeadConfig(**{**BACKBONE_HEAD_DEFAULTS.get(backbone, {}), **head_overrides})
    return ModelConfig(backbone=backbone, head=head, **BACKBONE_INPUT_DEFAULTS.get(backbone, {}))


@dataclass
class PareOutput:
    """What the network says about a batch of crops. Predictor.run_network returns one too
    (float32, the flip test and the fit to attention applied, no features)."""
    pose: torch.Tensor            # (B, 24, 3, 3) rotation matrices, joint 0 = global orientation
    betas: torch.Tensor           # (B, 10)
    cam: torch.Tensor             # (B, 3) weak perspective (s, tx, ty) of the crop
    part_logits: torch.Tensor     # (B, 25, h, w) background + 24 parts
    part_attention: torch.Tensor  # (B, 24, h, w) each map sums to 1 over its pixels
    features: torch.Tensor | None = None  # (B, C, h, w) backbone features, when asked for

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> PareOutput:
        """This output with fn applied to each of its tensors (absent features stay None),
        e.g. out.map(lambda t: t[:n]) for the first n crops'."""
        return PareOutput(**{f.name: None if (value := getattr(self, f.name)) is None else fn(value)
                             for f in dataclasses.fields(self)})


class PARE(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.head = PareHead(self.backbone.out_channels, config.head)

    def load_weights(self, state_dict: dict) -> tuple[list[str], list[str]]:
        """load_state_dict(strict=False) -> (missing, unexpected) keys, where the weights
        older checkpoints carry and the backbone no longer has (Backbone.legacy_keys) are
        not unexpected: such checkpoints still load."""
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        if unexpected:  # legacy_keys may read a weights file: only when there is something to excuse
            unexpected = [k for k in unexpected if k.removeprefix("backbone.") not in self.backbone.legacy_keys]
        return missing, unexpected

    def forward(self, images: torch.Tensor, return_features: bool = False) -> PareOutput:
        """images: (B, 3, S, S) crops, already normalised with config.mean / config.std."""
        features = self.backbone(images)
        out = self.head(features)
        return PareOutput(**out, features=features if return_features else None)
