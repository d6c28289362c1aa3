"""MPII Human Pose reader: 2D joints only, as Sample records in SMPL's 24-joint order.

Two inputs are understood:

* the official annotation file ``mpii_human_pose_v1_u12_1.mat`` (MATLAB struct ``RELEASE``);
  each person (``annorect``) with ``annopoints`` becomes one Sample, and its box is the
  square of side ``scale * 200`` px around ``objpos`` (MPII's scale is the person height
  relative to 200 px);
* the preprocessed ``mpii_train.npz`` of the SPIN project (keys ``imgname``, ``center``,
  ``scale``, ``part``), whose ``part`` (N, 24, 3) uses SPIN's 24 ground-truth joints:
  R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow, R shoulder,
  L shoulder, L elbow, L wrist, Neck (LSP), Top of head (LSP), Pelvis (MPII),
  Thorax (MPII), Spine (H36M), Jaw (H36M), Head (H36M), Nose, L eye, R eye, L ear, R ear.
  SPIN's preprocessing writes MPII joint i to ``MPII_TO_SPIN24[i]`` and sets the
  confidence of all 16 to 1; it keeps only people with all 16 joints annotated.

Only joints that exist in SMPL are kept: ankles, knees, hips, wrists, elbows, shoulders,
MPII's pelvis (-> pelvis) and upper neck (-> neck). Thorax and head top have no SMPL
counterpart; they and all unannotated joints get visibility False and coordinates 0.
"Visible" means annotated: MPII joints marked occluded (``is_visible`` 0) still carry
a position and count, as in SPIN's file, unless ``drop_occluded=True`` (.mat only).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from pare_demo.body.joint_names import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES
from pare_demo.data.samples import Sample

MPII_JOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)

# MPII joint name -> SMPL joint name, for the joints that truly correspond.
MPII_TO_SMPL_NAME = {
    **{n: n for n in MPII_JOINT_NAMES if n in SMPL_JOINT_NAMES},  # limbs and pelvis
    "upper_neck": "neck",
}
# (MPII id, SMPL index) pairs.
MPII_TO_SMPL = tuple(
    (MPII_JOINT_NAMES.index(m), SMPL_JOINT_NAMES.index(s)) for m, s in MPII_TO_SMPL_NAME.items()
)
# Where SPIN's preprocessing puts MPII joint i in its 24-joint array.
MPII_TO_SPIN24 = (0, 1, 2, 3, 4, 5, 14, 15, 12, 13, 6, 7, 8, 9, 10, 11)
# (SPIN J24 index, SMPL index) pairs.
SPIN24_TO_SMPL = tuple((MPII_TO_SPIN24[m], s) for m, s in MPII_TO_SMPL)

MAT_NAME = "mpii_human_pose_v1_u12_1.mat"
NPZ_NAME = "mpii_train.npz"
HELP = ("Download MPII Human Pose from http://human-pose.mpi-inf.mpg.de (images and "
        "annotations) and pass its folder; see README, 'Your own files'.")


def read_mpii(root: str | Path, annotations: str | Path | None = None, split: str = "train",
              drop_occluded: bool = False) -> list[Sample]:
    """All annotated people of MPII under ``root`` (the folder holding ``images/``).

    ``annotations``: the official .mat or SPIN's .npz; by default ``root/mpii_human_pose_v1_u12_1.mat``
    (also looked for in the official archive's ``mpii_human_pose_v1_u12_2/``), then ``root/mpii_train.npz``.
    ``split`` ("train", "test" or "all") filters the .mat by ``img_train``; the official test set has
    no joints, so "test" yields nothing from it. A .npz already is the training split.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MPII folder not found: {root}. {HELP}")
    if annotations is None:
        candidates = [root / MAT_NAME, root / "mpii_human_pose_v1_u12_2" / MAT_NAME, root / NPZ_NAME]
        annotations = next((p for p in candidates if p.is_file()), None)
        if annotations is None:
            raise FileNotFoundError(
                f"MPII annotations not found: {', '.join(map(str, candidates))}. {HELP}")
    annotations = Path(annotations)
    if not annotations.is_file():
        raise FileNotFoundError(f"MPII annotations not found: {annotations}. {HELP}")
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if annotations.suffix == ".npz":
        if split == "test":
            raise ValueError(f"{annotations} holds training data only; use split='train'")
        return _read_npz(root, annotations)
    return _read_mat(root, annotations, split, drop_occluded)


def _sample(root: Path, name: str, person: int, bbox, joints, visible) -> Sample:
    joints = np.where(visible[:, None], joints, 0.0)
    return Sample(image_path=root / name, person=person, bbox=np.asarray(bbox, dtype=np.float64),
                  joints2d=joints, joints2d_visible=visible, sequence="mpii")


def _square_box(cx, cy, scale) -> list[float]:
    half = scale * 100.0  # side = scale * 200 px
    return [cx - half, cy - half, cx + half, cy + half]


def _read_npz(root: Path, path: Path) -> list[Sample]:
    data = np.load(path)
    seen = Counter()
    samples = []
    for name, center, scale, part in zip(data["imgname"], data["center"], data["scale"], data["part"]):
        name = str(name)
        joints = np.zeros((NUM_SMPL_JOINTS, 2))
        visible = np.zeros(NUM_SMPL_JOINTS, dtype=bool)
        for j, s in SPIN24_TO_SMPL:
            joints[s], visible[s] = part[j, :2], part[j, 2] > 0
        samples.append(_sample(root, name, seen[name], _square_box(*center, float(scale)), joints, visible))
        seen[name] += 1
    return samples


# --- the official .mat: loadmat(squeeze_me=True) turns 1-element arrays into scalars and
# missing values into empty arrays, so every field may be a struct, an array of them, or [].

def _items(value) -> list:
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _field(struct, name):
    """struct.name, or None when absent or empty."""
    value = getattr(struct, name, None)
    if value is None or (isinstance(value, (np.ndarray, str)) and np.size(value) == 0):
        return None
    return value


def _is_visible(point) -> bool:
    value = _field(point, "is_visible")
    # Given as 0/1, '0'/'1' or [] (unknown: treated as not visibly marked).
    return value is not None and int(value) == 1


def _read_mat(root: Path, path: Path, split: str, drop_occluded: bool) -> list[Sample]:
    from scipy.io import loadmat

    release = loadmat(path, struct_as_record=False, squeeze_me=True)["RELEASE"]
    img_train = np.atleast_1d(release.img_train)
    samples = []
    for annolist, is_train in zip(_items(release.annolist), img_train):
        if split != "all" and bool(is_train) != (split == "train"):
            continue
        name = str(annolist.image.name)
        rects = _field(annolist, "annorect")
        for person, rect in enumerate(_items(rects) if rects is not None else []):
            annopoints = _field(rect, "annopoints")
            points = _field(annopoints, "point") if annopoints is not None else None
            if points is None:
                continue
            mpii = np.zeros((16, 2))
            present, kept = np.zeros(16, dtype=bool), np.zeros(16, dtype=bool)
            for p in _items(points):
                i = int(p.id)
                mpii[i] = float(p.x), float(p.y)
                present[i], kept[i] = True, not drop_occluded or _is_visible(p)
            joints = np.zeros((NUM_SMPL_JOINTS, 2))
            visible = np.zeros(NUM_SMPL_JOINTS, dtype=bool)
            for m, s in MPII_TO_SMPL:
                joints[s], visible[s] = mpii[m], kept[m]
            box = _mat_box(rect, mpii[present])
            samples.append(_sample(root, "images/" + name, person, box, joints, visible))
    return samples


def _mat_box(rect, points: np.ndarray) -> list[float]:
    objpos, scale = _field(rect, "objpos"), _field(rect, "scale")
    if objpos is not None and scale is not None and _field(objpos, "x") is not None:
        return _square_box(float(objpos.x), float(objpos.y), float(scale))
    # No person position: the annotated joints' box, enlarged by 20%.
    lo, hi = points.min(axis=0), points.max(axis=0)
    center, half = (lo + hi) / 2, (hi - lo) * 0.6
    return [*(center - half), *(center + half)]
