"""The PARE head: part attention over a 2D part branch pools a 3D body branch, one small
linear map per part regresses that part's rotation; shape and camera come from the
flattened pooled features.

Layout of the official HRNet-W32 PARE head (our names, official names in brackets):
    part_branch   [keypoint_deconv_layers]  2 x (3x3 conv 128, BN, ReLU)
    part_logits   [keypoint_final_layer]    1x1 conv -> 25 (background + 24 parts)
    smpl_branch   [smpl_deconv_layers]      2 x (3x3 conv 128, BN, ReLU)
    smpl_features [smpl_final_layer]        1x1 conv 128 -> 64
    pose_weight   [pose_mlp]                24 x (128 -> 6), no bias
    shape_regressor, cam_regressor [shape_mlp, cam_mlp]   24*64 -> 10, 24*64 -> 3
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pare_demo.blazepose.landmarks import NUM_LANDMARK_CHANNELS, smpl_from_landmarks_matrix
from pare_demo.geometry import rot6d_to_rotmat


@dataclass(frozen=True)
class HeadConfig:
    num_parts: int = 24
    num_filters: int = 128          # channels of both branches
    conv_layers: int = 2            # 3x3 conv layers per branch
    upsample_layers: int = 0        # 4x4 stride-2 deconvolutions first (for 1/32 backbones)
    smpl_channels: int = 64         # pooled features per part for shape and camera
    # The study's cheaper variant: shape and camera are pooled with attention computed on
    # the part logits average-pooled by this factor (1 = official PARE).
    shape_pool_factor: int = 1
    # A learnable per-part 6D bias starting at an upright person facing the camera in the
    # zero pose, so training from scratch starts from a body, not random rotations.
    # Official PARE has none (False keeps its exact layout).
    pose_bias: bool = False
    # Width of an MLP that reads the 2D skeleton the part attention draws (each part map's
    # centre) and adds a correction to every part's 6D rotation; 0 = none (official PARE).
    # For networks trained from scratch, whose pooled features carry little pose: from
    # true 2D joints such an MLP alone reaches 33 mm PA-MPJPE on our synthetic test set.
    skeleton_hidden: int = 0
    # Number of trailing backbone channels that are landmark heatmap logits (BlazePose's 39):
    # a 1x1 conv of them is added to the part logits, starting at each SMPL joint's mix of
    # landmarks (pare_demo.blazepose.landmarks) with the learnt logits at zero, so the part
    # attention starts from a 2D pose network trained on real photos. 0 = none.
    landmark_prior: int = 0


def _branch(in_channels: int, cfg: HeadConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(cfg.upsample_layers):
        layers += [nn.ConvTranspose2d(channels, cfg.num_filters, 4, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(cfg.num_filters), nn.ReLU(inplace=True)]
        channels = cfg.num_filters
    for _ in range(cfg.conv_layers):
        layers += [nn.Conv2d(channels, cfg.num_filters, 3, padding=1, bias=False),
                   nn.BatchNorm2d(cfg.num_filters), nn.ReLU(inplace=True)]
        channels = cfg.num_filters
    return nn.Sequential(*layers)


def attention_pool(logits: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of each part's logits (B, J, H, W) over all pixels, used as weights to pool
    features (B, C, H, W): returns the pooled features (B, C, J) and the maps (B, J, H, W)."""
    b, j, h, w = logits.shape
    attention = logits.reshape(b, j, h * w).softmax(dim=-1)
    pooled = torch.bmm(attention, features.reshape(b, features.shape[1], h * w).transpose(1, 2))
    return pooled.transpose(1, 2), attention.reshape(b, j, h, w)


def cell_centres(size: int, device=None, dtype=None) -> torch.Tensor:
    """Centres of `size` feature-map cells along one axis in crop units of [-1, 1], the
    frame of the 2D joint targets."""
    return (torch.arange(size, device=device, dtype=dtype) + 0.5) * 2 / size - 1


def attention_centres(attention: torch.Tensor) -> torch.Tensor:
    """Each map's centre of mass (B, J, H, W) -> (B, J, 2) x, y in crop units of [-1, 1]."""
    _, _, h, w = attention.shape
    ys = cell_centres(h, attention.device, attention.dtype)
    xs = cell_centres(w, attention.device, attention.dtype)
    return torch.stack([(attention.sum(2) * xs).sum(-1), (attention.sum(3) * ys).sum(-1)], -1)


def skeleton_features(centres: torch.Tensor) -> torch.Tensor:
    """(B, J, 2) part centres -> (B, 2J + 1): the skeleton relative to part 0 (the pelvis)
    divided by its size, then the size, so the MLP sees the pose apart from scale and place."""
    relative = centres - centres[:, :1]
    size = relative.norm(dim=-1).mean(1, keepdim=True).clamp(min=1e-3)
    return torch.cat([(relative / size[..., None]).flatten(1), size], 1)


class PareHead(nn.Module):
    def __init__(self, in_channels: int, cfg: HeadConfig = HeadConfig()):
        super().__init__()
        self.cfg = cfg
        self.part_branch = _branch(in_channels, cfg)
        self.smpl_branch = _branch(in_channels, cfg)
        self.part_logits = nn.Conv2d(cfg.num_filters, cfg.num_parts + 1, 1)
        self.smpl_features = nn.Conv2d(cfg.num_filters, cfg.smpl_channels, 1)
        # One 128 -> 6 linear map per part (the official locally connected layer).
        self.pose_weight = nn.Parameter(torch.empty(cfg.num_parts, 6, cfg.num_filters))
        nn.init.normal_(self.pose_weight, std=0.01)
        if cfg.pose_bias:
            upright = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # body Y up -> camera y down
            start = torch.eye(3).repeat(cfg.num_parts, 1, 1)
            start[0] = upright
            self.pose_bias = nn.Parameter(start[:, :, :2].reshape(cfg.num_parts, 6))
        if cfg.skeleton_hidden:
            width = cfg.skeleton_hidden
            self.skeleton_mlp = nn.Sequential(
                nn.Linear(2 * cfg.num_parts + 1, width), nn.ReLU(inplace=True),
                nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, 6 * cfg.num_parts))
            # Starts at zero: added to trained weights, the network's output is unchanged.
            nn.init.zeros_(self.skeleton_mlp[-1].weight)
            nn.init.zeros_(self.skeleton_mlp[-1].bias)
        if cfg.landmark_prior:
            self.landmark_prior = nn.Conv2d(cfg.landmark_prior, cfg.num_parts + 1, 1)
            with torch.no_grad():
                self.landmark_prior.weight.zero_()
                self.landmark_prior.bias.zero_()
                if cfg.landmark_prior == NUM_LANDMARK_CHANNELS and cfg.num_parts == 24:
                    self.landmark_prior.weight[1:, :, 0, 0] = torch.from_numpy(smpl_from_landmarks_matrix())
                self.part_logits.weight.zero_()
                self.part_logits.bias.zero_()
        flat = cfg.num_parts * cfg.smpl_channels
        self.shape_regressor = nn.Linear(flat, 10)
        self.cam_regressor = nn.Linear(flat, 3)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        part_feats = self.part_branch(features)
        smpl_feats = self.smpl_branch(features)
        logits = self.part_logits(part_feats)                        # (B, 25, H, W)
        if self.cfg.landmark_prior:
            logits = logits + self.landmark_prior(features[:, -self.cfg.landmark_prior:])
        pooled, attention = attention_pool(logits[:, 1:], smpl_feats)  # (B, 128, 24)
        # Per-part linear map as a broadcast product summed over channels (the official
        # locally connected layer's summation order, which the equivalence test pins down).
        weight = self.pose_weight.permute(1, 2, 0)[None]              # (1, 6, 128, 24)
        pose6d = (pooled[:, None] * weight).sum(dim=2).transpose(1, 2)  # (B, 24, 6)
        if self.cfg.pose_bias:
            pose6d = pose6d + self.pose_bias
        if self.cfg.skeleton_hidden:
            correction = self.skeleton_mlp(skeleton_features(attention_centres(attention)))
            pose6d = pose6d + correction.reshape(-1, self.cfg.num_parts, 6)

        if self.cfg.shape_pool_factor > 1:
            k = self.cfg.shape_pool_factor
            shape_pooled, _ = attention_pool(F.avg_pool2d(logits[:, 1:], k), F.avg_pool2d(smpl_feats, k))
        else:
            shape_pooled = pooled
        # The 1x1 smpl_features conv is affine and each part's weights sum to one, so it
        # can be applied after pooling: exact, and 24 positions instead of H x W.
        w = self.smpl_features.weight.flatten(1)
        smpl_pooled = torch.einsum("kc,bcp->bkp", w, shape_pooled) + self.smpl_features.bias[:, None]
        flat = smpl_pooled.flatten(1)                                # channel-major: k * 24 + part
        return {
            "pose": rot6d_to_rotmat(pose6d),
            "betas": self.shape_regressor(flat),
            "cam": self.cam_regressor(flat),
            "part_logits": logits,
            "part_attention": attention,
        }
