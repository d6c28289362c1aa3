"""3DPW-protocol errors in millimetres: MPJPE, PA-MPJPE, PVE.

Inputs are in metres, batch-first; every function returns one value per sample
(or per sample and joint for the `*_per_joint` forms, used by the error charts).
Joints are pelvis-aligned first: the pelvis is the mid-point of the hips by default,
as the 3DPW protocol on the 14 LSP joints does."""
from __future__ import annotations

from collections.abc import Sequence

import roma
import torch

from pare_demo.body.joint_names import EVAL_HIP_INDICES

M_TO_MM = 1000.0


def pelvis_of(joints: torch.Tensor, hip_indices: Sequence[int] = EVAL_HIP_INDICES) -> torch.Tensor:
    """(B, J, 3) -> (B, 1, 3): mean of the hip joints."""
    return joints[:, list(hip_indices)].mean(dim=1, keepdim=True)


def procrustes_align(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Similarity transform (rotation, uniform scale, translation) of each source point set
    (B, N, 3) that best fits target (B, N, 3) in the least-squares sense; returns the
    transformed source."""
    rotation, translation, scale = roma.rigid_points_registration(
        source.double(), target.double(), compute_scaling=True
    )
    aligned = scale[:, None, None] * source.double() @ rotation.transpose(-1, -2)
    return (aligned + translation[:, None, :]).to(source.dtype)


def mpjpe_per_joint(pred: torch.Tensor, target: torch.Tensor,
                    hip_indices: Sequence[int] = EVAL_HIP_INDICES) -> torch.Tensor:
    """(B, J) joint errors after pelvis alignment."""
    pred = pred - pelvis_of(pred, hip_indices)
    target = target - pelvis_of(target, hip_indices)
    return (pred - target).norm(dim=-1) * M_TO_MM


def pa_mpjpe_per_joint(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, J) joint errors after similarity Procrustes alignment of pred onto target."""
    return (procrustes_align(pred, target) - target).norm(dim=-1) * M_TO_MM


def mpjpe(pred: torch.Tensor, target: torch.Tensor,
          hip_indices: Sequence[int] = EVAL_HIP_INDICES) -> torch.Tensor:
    return mpjpe_per_joint(pred, target, hip_indices).mean(dim=-1)


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return pa_mpjpe_per_joint(pred, target).mean(dim=-1)


def pve(pred_vertices: torch.Tensor, target_vertices: torch.Tensor,
        pred_joints: torch.Tensor, target_joints: torch.Tensor,
        hip_indices: Sequence[int] = EVAL_HIP_INDICES) -> torch.Tensor:
    """Per-vertex error (B,), each mesh translated by the pelvis of its own joints."""
    pred = pred_vertices - pelvis_of(pred_joints, hip_indices)
    target = target_vertices - pelvis_of(target_joints, hip_indices)
    return (pred - target).norm(dim=-1).mean(dim=-1) * M_TO_MM
