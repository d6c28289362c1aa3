"""Training crops from Samples, with augmentation: flip (with the SMPL left/right pose
flip), in-plane rotation, scale, colour jitter and optional synthetic occlusion."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pare_demo.body.joint_names import SMPL_FLIP_PERMUTATION
from pare_demo.crop import apply_affine
from pare_demo.data.samples import Sample
from pare_demo.data.pw3d import camera_frame_pose
from pare_demo.body.mirror import mirror_axis_angle
from pare_demo.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle
from pare_demo.models.pare import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class Augmentation:
    flip: float = 0.5            # probability
    rotation_deg: float = 30.0   # std of the in-plane rotation (clipped at 2 std), applied 60% of the time
    scale: float = 0.25          # crop side scaled by 1 +- this
    translate: float = 0.05      # box centre moved by up to this fraction of the side
    color: float = 0.2           # per-channel gain jitter
    occlusion: float = 0.0       # probability of a random grey rectangle (the study: off)
    # Probability of a photo's edge cutting the body: the crop black (as the predictor pads
    # outside a photo) below a random row between the pelvis and the lowest joint; the joints
    # there lose their 2D targets, keep their 3D ones.
    truncate: float = 0.0


NO_AUGMENTATION = Augmentation(flip=0, rotation_deg=0, scale=0, translate=0, color=0, occlusion=0, truncate=0)


class CropDataset(Dataset):
    """Each item: normalised crop (3, S, S) and targets: joints2d in [-1, 1] (24, 2),
    joints2d_visible (24,), pose (24, 3, 3) camera frame, betas (10,), has_3d."""

    def __init__(self, samples: list[Sample], input_size: int = 224, augment: Augmentation = Augmentation(),
                 box_scale: float = 1.2, seed: int = 0, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        """mean, std: the network's input normalisation (ModelConfig.mean / std)."""
        self.samples = samples
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.size = input_size
        self.augment = augment
        self.box_scale = box_scale
        self.seed = seed
        self.epoch = 0  # set by the training loop so augmentation differs per epoch, reproducibly

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        aug = self.augment
        image = cv2.cvtColor(cv2.imread(str(s.image_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

        x0, y0, x1, y1 = s.bbox
        center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        side = max(x1 - x0, y1 - y0) * self.box_scale
        side *= 1 + rng.uniform(-aug.scale, aug.scale)
        center = center + rng.uniform(-aug.translate, aug.translate, 2) * side
        angle = float(np.clip(rng.normal(0, aug.rotation_deg), -2 * aug.rotation_deg, 2 * aug.rotation_deg)) \
            if aug.rotation_deg and rng.random() < 0.6 else 0.0
        flip = rng.random() < aug.flip

        # Full image -> crop: scale about the box centre, rotate the content by `angle`.
        affine = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, self.size / side)
        affine[:, 2] += self.size / 2 - center
        crop = cv2.warpAffine(image, affine, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        joints = apply_affine(s.joints2d, affine)
        visible = s.joints2d_visible & (joints >= 0).all(1) & (joints < self.size).all(1)

        pose = None
        if s.has_3d:
            pose = camera_frame_pose(s)
            if angle:  # the image turned by `angle` counter-clockwise about the camera axis
                turn = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, -np.deg2rad(angle)], dtype=torch.float64))
                orient = axis_angle_to_rotmat(torch.from_numpy(pose[:3]))
                pose[:3] = rotmat_to_axis_angle(turn @ orient).numpy()
        if flip:
            crop = crop[:, ::-1]
            joints = np.stack([self.size - 1 - joints[:, 0], joints[:, 1]], 1)[list(SMPL_FLIP_PERMUTATION)]
            visible = visible[list(SMPL_FLIP_PERMUTATION)]
            if pose is not None:
                pose = mirror_axis_angle(pose.reshape(24, 3)).reshape(72)

        crop = crop.astype(np.float32) / 255
        if aug.color:
            crop = np.clip(crop * rng.uniform(1 - aug.color, 1 + aug.color, 3), 0, 1)
        if aug.occlusion and rng.random() < aug.occlusion:
            w, h = (rng.uniform(0.15, 0.45, 2) * self.size).astype(int)
            cx, cy = rng.integers(0, self.size, 2)
            crop[max(0, cy - h // 2):cy + h // 2, max(0, cx - w // 2):cx + w // 2] = 0.5
        if aug.truncate and rng.random() < aug.truncate:
            row = truncation_row(joints, visible, self.size, rng)
            crop[row:] = 0.0
            visible = visible & (joints[:, 1] < row)
        crop = (crop - self.mean) / self.std

        has_3d = pose is not None
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float(),
            "joints2d": torch.from_numpy((joints - self.size / 2) / (self.size / 2)).float(),
            "joints2d_visible": torch.from_numpy(visible),
            "pose": axis_angle_to_rotmat(torch.from_numpy(pose.reshape(24, 3))).float() if has_3d
            else torch.eye(3).repeat(24, 1, 1),
            "betas": torch.from_numpy(s.betas[:10]).float() if has_3d else torch.zeros(10),
            "has_3d": torch.tensor(has_3d),
        }


def truncation_row(joints: np.ndarray, visible: np.ndarray, size: int, rng: np.random.Generator) -> int:
    """A crop row between the pelvis (joint 0) and the lowest visible joint, for truncate."""
    top = joints[0, 1] if visible[0] else size / 2
    bottom = joints[visible, 1].max() if visible.any() else size
    top, bottom = sorted((float(np.clip(top, 0, size)), float(np.clip(bottom, 0, size))))
    return int(rng.uniform(top, bottom)) if bottom - top >= 1 else int(top)
