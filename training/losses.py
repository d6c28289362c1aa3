"""The study's loss: L = 5 (L3D + L2D) + 1 Lpose + 0.001 Lbeta, with per-sample masks
(MPII has 2D joints only; 3DPW frames with an invalid camera pose have nothing 3D).

Optional, off in the study's recipe, for networks that start from scratch: a part-attention
term that pulls each part's attention map towards its joint's 2D position, and one that
pulls each map's centre onto the joint."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pare_demo.geometry import project_to_crop
from pare_demo.models.head import attention_centres, cell_centres


@dataclass(frozen=True)
class LossWeights:
    joints3d: float = 5.0
    joints2d: float = 5.0
    pose: float = 1.0
    betas: float = 0.001
    part_attention: float = 0.0  # the study: no part supervision
    part_centres: float = 0.0    # L1 from each part map's centre to its joint (integral regression)
    # With a backbone being fine-tuned: MSE from its features to those of the backbone as
    # built (BlazePose's: the original converted network), so renders do not make it forget
    # what its pretraining on real photos taught (training.module adds it).
    trunk_distillation: float = 0.0


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked elements; mask broadcasts over trailing dims."""
    while mask.dim() < pred.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


def part_attention_loss(part_logits: torch.Tensor, joints2d: torch.Tensor, visible: torch.Tensor,
                        sigma_cells: float = 1.0) -> torch.Tensor:
    """KL divergence from a Gaussian around each visible joint (sigma in feature-map cells)
    to that part's attention, the softmax of its logits over all pixels; 0 when they agree.
    part_logits (B, 25, H, W) with background first; joints2d (B, 24, 2) in [-1, 1]."""
    b, _, h, w = part_logits.shape
    log_attention = part_logits[:, 1:].reshape(b, -1, h * w).log_softmax(dim=-1)
    ys, xs = torch.meshgrid(cell_centres(h, part_logits.device), cell_centres(w, part_logits.device), indexing="ij")
    cells = torch.stack([xs, ys], -1).reshape(1, 1, h * w, 2)
    squared = ((cells - joints2d[:, :, None].to(cells.dtype)) ** 2).sum(-1)  # (B, 24, H*W)
    target = (-squared / (2 * (sigma_cells * 2 / w) ** 2)).softmax(dim=-1)
    kl = (target * (target.clamp_min(1e-12).log() - log_attention)).sum(-1)
    mask = visible.to(kl.dtype)
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


def part_centres_loss(part_attention: torch.Tensor, joints2d: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Mean absolute distance, per coordinate in crop units of [-1, 1], from each part map's
    centre of mass to its visible joint: what the skeleton MLP reads, trained directly."""
    centres = attention_centres(part_attention)
    mask = visible[..., None].to(centres.dtype).expand_as(centres)
    return ((centres - joints2d.to(centres.dtype)).abs() * mask).sum() / mask.sum().clamp(min=1.0)


def pare_loss(pred: dict, target: dict, weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """pred: joints3d (B, 24, 3) from the predicted body, cam (B, 3), pose (B, 24, 3, 3), betas,
    part_logits (B, 25, H, W) when weights.part_attention is set, part_attention (B, 24, H, W)
    when weights.part_centres is.
    target: joints3d, joints2d (B, 24, 2) in [-1, 1], joints2d_visible (B, 24), pose, betas,
    has_3d (B,). 3D joints are compared pelvis-centred."""
    has_3d = target["has_3d"]
    pred_rel = pred["joints3d"] - pred["joints3d"][:, :1]
    target_rel = target["joints3d"] - target["joints3d"][:, :1]
    terms = {
        "joints3d": masked_mse(pred_rel, target_rel, has_3d),
        "joints2d": masked_mse(project_to_crop(pred["joints3d"], pred["cam"]), target["joints2d"],
                               target["joints2d_visible"]),
        "pose": masked_mse(pred["pose"], target["pose"], has_3d),
        "betas": masked_mse(pred["betas"], target["betas"], has_3d),
    }
    if weights.part_attention:
        terms["part_attention"] = part_attention_loss(pred["part_logits"], target["joints2d"],
                                                      target["joints2d_visible"])
    if weights.part_centres:
        terms["part_centres"] = part_centres_loss(pred["part_attention"], target["joints2d"],
                                                  target["joints2d_visible"])
    terms["total"] = sum(getattr(weights, k) * v for k, v in terms.items())
    return terms
