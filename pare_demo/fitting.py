"""Test-time fit of each body's projected joints to its own part-attention keypoints.

The part branch finds the joints in the image far better than the rotations and the
camera regressed from its pooled features place them (on the real-photo dev set, with a
mid-training checkpoint of the bundled weights' run: PCK@0.1 0.71 for the attention
keypoints against 0.36 for the projected joints). So, as SPIN's and EFT's fits do with 2D keypoints, the camera and a small
rotation of every joint are optimised so the projected joints land on the attention
keypoints, each weighted by how concentrated its map is, with a penalty for moving away
from the network's pose. Only the 24 joints are posed (forward kinematics on the shaped
rest joints), not the mesh; still, 30 iterations take about 55 ms a person on an idle
2-core CPU (the quick benchmark, December 2026), each person fitted on their own.

    pose, cam = fit_to_attention(body_model, pose, betas, cam, part_attention)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from pare_demo.geometry import axis_angle_to_rotmat, project_to_crop
from pare_demo.models.head import cell_centres


@dataclass(frozen=True)
class FitSettings:
    # More do not help: on synthetic set 2's validation split (670 person-frames, bundled
    # weights) 60 iterations give MPJPE / PA-MPJPE 103.4 / 63.3 mm against 30's 103.3 / 63.1.
    iterations: int = 30
    # Weight of the squared rotation change (radians) per joint. Chosen on synthetic validation
    # frames (2D and 3D both improve; 0.01 and 0.001 did worse in 3D), not on the photos.
    pose_prior: float = 0.003
    window: int = 2            # keypoint: centre of mass within this many cells of the peak
    min_weight: float = 0.05   # keypoints whose window holds less attention than this are ignored


# Video frames: fewer iterations (on the dev photos, 10 instead of 30 lost 0.01 of PCK@0.1).
VIDEO_FIT = FitSettings(iterations=10)


def attention_keypoints(attention: torch.Tensor, window: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J, h, w) maps -> keypoints (B, J, 2) in crop units of [-1, 1] and weights (B, J):
    the centre of mass of each map within `window` cells of its peak (sub-cell, and not
    pulled away by a second mode as the whole map's centre is), weighted by the attention
    that window holds."""
    b, j, h, w = attention.shape
    flat = attention.reshape(b, j, h * w)
    peak = flat.argmax(-1)
    py, px = peak // w, peak % w
    ys, xs = torch.arange(h, device=attention.device), torch.arange(w, device=attention.device)
    near_y = (ys[None, None] - py[..., None]).abs() <= window          # (B, J, h)
    near_x = (xs[None, None] - px[..., None]).abs() <= window          # (B, J, w)
    local = attention * (near_y[..., :, None] & near_x[..., None, :])
    mass = local.sum((2, 3))
    cy, cx = cell_centres(h, attention.device, attention.dtype), cell_centres(w, attention.device, attention.dtype)
    x = (local.sum(2) * cx).sum(-1) / mass.clamp_min(1e-12)
    y = (local.sum(3) * cy).sum(-1) / mass.clamp_min(1e-12)
    return torch.stack([x, y], -1), mass


def rest_joints(body_model, betas: torch.Tensor) -> torch.Tensor:
    """(B, 10) betas -> (B, 24, 3) joints of the shaped body in its rest pose."""
    shaped = body_model.v_template + torch.einsum("vcn,bn->bvc", body_model.shapedirs[..., :betas.shape[1]], betas)
    return torch.einsum("jv,bvc->bjc", body_model.J_regressor, shaped)


@lru_cache(maxsize=8)
def kinematic_levels(parents: tuple[int, ...]) -> tuple[list[tuple[list[int], list[int]]], list[int], list[int]]:
    """Forward kinematics one tree level at a time (9 steps for SMPL instead of 23): per
    level below the root, its joints and their parents, as positions in the level order;
    the level order (joint indices); and each joint's position in that order."""
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    order = sorted(range(len(parents)), key=lambda j: (depth[j], j))
    position = {j: i for i, j in enumerate(order)}
    levels = [([position[j] for j in order if depth[j] == d], [position[parents[j]] for j in order if depth[j] == d])
              for d in range(1, max(depth) + 1)]
    return levels, order, [position[j] for j in range(len(parents))]


def posed_joints(rotations: torch.Tensor, rest: torch.Tensor, parents) -> torch.Tensor:
    """Forward kinematics: (B, 24, 3, 3) rotations (joint 0 = global orientation) and rest
    joints (B, 24, 3) -> posed joints (B, 24, 3), the body model's own joints."""
    levels, order, position = kinematic_levels(tuple(int(p) for p in parents))
    rotations, rest = rotations[:, order], rest[:, order]  # level order from here on
    world_rot, world_pos = rotations[:, :1], rest[:, :1]
    for joints, parent in levels:
        offsets = rest[:, joints] - rest[:, parent]
        world_pos = torch.cat([world_pos, world_pos[:, parent] + (world_rot[:, parent] @ offsets[..., None])[..., 0]], 1)
        world_rot = torch.cat([world_rot, world_rot[:, parent] @ rotations[:, joints]], 1)
    return world_pos[:, position]


def fit_to_attention(body_model, pose: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor,
                     attention: torch.Tensor, settings: FitSettings = FitSettings()) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's pose (B, 24, 3, 3) and camera (B, 3), changed so each body's projected
    joints meet its attention keypoints. Betas stay as they are. Each body is fitted on its
    own: L-BFGS's line search is one for all it optimises, so a batch fitted together gives
    each body a result that depends on the others in it."""
    fitted = [_fit_one(body_model, *(t[i:i + 1] for t in (pose, betas, cam, attention)), settings)
              for i in range(len(pose))]
    if not fitted:
        return pose, cam
    return torch.cat([p for p, _ in fitted]), torch.cat([c for _, c in fitted])


def _fit_one(body_model, pose: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor,
             attention: torch.Tensor, settings: FitSettings) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode(False), torch.enable_grad():
        pose, betas, cam, attention = (t.detach().clone().float() for t in (pose, betas, cam, attention))
        targets, weights = attention_keypoints(attention, settings.window)
        weights = torch.where(weights >= settings.min_weight, weights, torch.zeros_like(weights))
        rest = rest_joints(body_model, betas)
        parents = body_model.parents.tolist()
        change = torch.zeros(pose.shape[:2] + (3,), device=pose.device, requires_grad=True)
        camera = cam.clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS([change, camera], lr=1.0, max_iter=settings.iterations,
                                      line_search_fn="strong_wolfe")
        total_weight = weights.sum(1).clamp_min(1e-6)

        def loss():
            optimizer.zero_grad()
            rotations = pose @ axis_angle_to_rotmat(change)
            uv = project_to_crop(posed_joints(rotations, rest, parents), camera)
            reprojection = (((uv - targets) ** 2).sum(-1) * weights).sum(1) / total_weight
            value = (reprojection + settings.pose_prior * (change ** 2).sum((1, 2))).sum()
            value.backward()
            return value

        optimizer.step(loss)
        with torch.no_grad():
            return pose @ axis_angle_to_rotmat(change), camera.detach()
