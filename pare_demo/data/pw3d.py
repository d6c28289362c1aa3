"""3DPW reader (and of our synthetic sets, written in the same layout).

A 3DPW download holds `imageFiles/<sequence>/image_00000.jpg ...` and
`sequenceFiles/{train,validation,test}/<sequence>.pkl`, python-2 pickles with, per
sequence: `sequence`, `genders`, `betas` (people x 10), `poses` (people x N x 72, world
frame), `trans` (people x N x 3), `cam_poses` (N x 4 x 4, world -> camera),
`cam_intrinsics` (3 x 3), `poses2d` (people x N x 3 x 18, OpenPose), `jointPositions`
(people x N x 72, SMPL joints in the world frame), `campose_valid` (people x N) and
`img_frame_ids` (N). One Sample per person and frame.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from pare_demo.data.samples import Sample
from pare_demo.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

SPLITS = ("train", "validation", "test")
HELP = ("Download 3DPW from https://virtualhumans.mpi-inf.mpg.de/3DPW (imageFiles.zip and "
        "sequenceFiles.zip), unzip both into one folder and pass that folder; see README, "
        "'Your own files'.")
BOX_MARGIN = 1.1  # the box from projected joints is this much larger than their extent


class _Plain(pickle.Unpickler):
    """3DPW pickles hold numpy arrays and lists only; refuse anything else."""

    def find_class(self, module, name):
        from pare_demo.body.smpl_pickle import _ALLOWED

        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a 3DPW file")


def read_sequence_file(path: str | Path) -> dict:
    with open(path, "rb") as f:
        return _Plain(f, encoding="latin1").load()


def sequence_files(root: str | Path, split: str) -> list[Path]:
    root = Path(root)
    folder = root / "sequenceFiles" / split
    if not root.is_dir():
        raise FileNotFoundError(f"3DPW folder {root} does not exist. {HELP}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing (expected sequenceFiles/{split}/*.pkl). {HELP}")
    return sorted(folder.glob("*.pkl"))


def project(points: np.ndarray, extrinsics: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(..., 3) world points -> (..., 2) pixels."""
    cam = points @ extrinsics[:3, :3].T + extrinsics[:3, 3]
    uv = cam @ intrinsics.T
    return uv[..., :2] / uv[..., 2:3]


def read_pw3d(root: str | Path, split: str = "test", sequences: list[str] | None = None,
              every: int = 1) -> list[Sample]:
    """Samples of one split (every `every`-th frame), optionally only some sequences."""
    samples = []
    for path in sequence_files(root, split):
        if sequences and path.stem not in sequences:
            continue
        samples += sequence_samples(Path(root), read_sequence_file(path), every)
    return samples


def sequence_samples(root: Path, seq: dict, every: int = 1) -> list[Sample]:
    name = seq["sequence"]
    intrinsics = np.asarray(seq["cam_intrinsics"], dtype=np.float64)
    cam_poses = np.asarray(seq["cam_poses"], dtype=np.float64)
    frame_ids = np.asarray(seq["img_frame_ids"]).astype(int)
    out = []
    for person in range(len(seq["poses"])):
        poses = np.asarray(seq["poses"][person], dtype=np.float64)
        trans = np.asarray(seq["trans"][person], dtype=np.float64)
        joints = np.asarray(seq["jointPositions"][person], dtype=np.float64).reshape(len(poses), 24, 3)
        valid = np.asarray(seq["campose_valid"][person]).astype(bool)
        betas = np.asarray(seq["betas"][person], dtype=np.float64)[:10]
        gender = {"m": "male", "f": "female"}.get(str(seq["genders"][person])[:1], "neutral")
        for i in range(0, len(poses), every):
            image_path = root / "imageFiles" / name / f"image_{frame_ids[i]:05d}.jpg"
            joints2d = project(joints[i], cam_poses[i], intrinsics)
            lo, hi = joints2d.min(0), joints2d.max(0)
            center, side = (lo + hi) / 2, (hi - lo).max() * BOX_MARGIN
            bbox = np.concatenate([center - side / 2, center + side / 2])
            depth = (joints[i] @ cam_poses[i][:3, :3].T + cam_poses[i][:3, 3])[:, 2]
            out.append(Sample(
                image_path=image_path, person=person, bbox=bbox, joints2d=joints2d,
                joints2d_visible=np.full(24, bool(valid[i])) & (depth > 0),
                pose=poses[i], betas=betas, translation=trans[i], joints3d=joints[i],
                camera_extrinsics=cam_poses[i], focal_length=intrinsics[[0, 1], [0, 1]],
                principal_point=intrinsics[:2, 2], gender=gender, sequence=name, frame=int(frame_ids[i]),
                valid_3d=bool(valid[i])))
    return out


def camera_frame_pose(sample: Sample) -> np.ndarray:
    """(72,) pose with the global orientation turned into the camera frame."""
    rot = torch.from_numpy(sample.camera_extrinsics[:3, :3]).double()
    orient = axis_angle_to_rotmat(torch.from_numpy(sample.pose[:3]).double())
    return np.concatenate([rotmat_to_axis_angle(rot @ orient).numpy(), sample.pose[3:]])


def to_camera_frame(sample: Sample, root_joint_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pose (72,) with the global orientation in the camera frame, translation (3,) in the
    camera frame). smplx rotates the body about its rest root joint J0 (which depends on
    the betas and the body model: pass body_model's J0 for these betas), so the camera
    translation is R (J0 + t) + t_cam - J0."""
    rot, t_cam = sample.camera_extrinsics[:3, :3], sample.camera_extrinsics[:3, 3]
    pose = camera_frame_pose(sample)
    translation = rot @ (root_joint_rest + sample.translation) + t_cam - root_joint_rest
    return pose, translation
