"""Where a network's pose error comes from, joint by joint, on a set with 3D ground truth.

    python -m training.diagnose [--checkpoint C] --dataset-root R [--split test] [--every N] [--json OUT]

For each of the 24 SMPL joints:
- rotation error: mean angle between the predicted and the true local rotation, beside
  the truth's spread (mean angle from the average rotation, which is what always
  predicting the average pose scores). An error near the spread means the network has
  learnt nothing about that joint (joint 0's rotation is the global orientation, in the
  camera frame);
- part centre: distance in crop pixels from the centre of mass of that part's attention
  map to the joint, and the share of frames whose centre lies nearer the mirrored joint
  (left and right swapped) by more than MIRROR_MARGIN_PX.
Crops are the validation crops of training (no augmentation). Without --checkpoint: the
bundled weights.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from pare_demo.body.joint_names import SMPL_FLIP_PERMUTATION, SMPL_JOINT_NAMES
from pare_demo.geometry import nearest_rotation, rotmat_to_axis_angle

MIRROR_MARGIN_PX = 5.0


def rotation_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between rotation matrices (..., 3, 3)."""
    return torch.rad2deg(rotmat_to_axis_angle(a.transpose(-1, -2) @ b).norm(dim=-1))


def mean_rotation(rotations: torch.Tensor) -> torch.Tensor:
    """Chordal mean of (N, ..., 3, 3) rotations: the rotation nearest their average matrix."""
    return nearest_rotation(rotations.mean(0))


def joint_report(pred_pose: torch.Tensor, true_pose: torch.Tensor, centres: torch.Tensor, joints2d: torch.Tensor,
                 visible: torch.Tensor, crop_size: int) -> list[dict]:
    """One row per SMPL joint. Poses (N, 24, 3, 3) in the camera frame; centres and joints2d
    (N, 24, 2) in crop units of [-1, 1]; visible (N, 24)."""
    error = rotation_angles(pred_pose, true_pose).mean(0)
    spread = rotation_angles(mean_rotation(true_pose)[None], true_pose).mean(0)
    to_px = crop_size / 2
    off = (centres - joints2d).norm(dim=-1) * to_px
    off_mirrored = (centres - joints2d[:, list(SMPL_FLIP_PERMUTATION)]).norm(dim=-1) * to_px
    rows = []
    for j, name in enumerate(SMPL_JOINT_NAMES):
        seen = visible[:, j]
        d, m = off[seen, j], off_mirrored[seen, j]
        rows.append({
            "joint": name,
            "rotation_error_deg": float(error[j]),
            "truth_spread_deg": float(spread[j]),
            "centre_error_px_median": float(d.median()) if len(d) else float("nan"),
            "centre_error_px_mean": float(d.mean()) if len(d) else float("nan"),
            "nearer_mirrored_joint": float((m < d - MIRROR_MARGIN_PX).float().mean()) if len(d) else float("nan"),
        })
    return rows


@torch.inference_mode()
def network_outputs(model, samples, batch_size: int = 32, progress: bool = True) -> dict[str, torch.Tensor]:
    """The network's poses and part centres on the samples' validation crops, with the targets."""
    from pare_demo.models.head import attention_centres
    from training.datasets import NO_AUGMENTATION, CropDataset

    dataset = CropDataset(samples, model.config.input_size, NO_AUGMENTATION,
                          mean=model.config.mean, std=model.config.std)
    keys = ("pred_pose", "centres", "pose", "joints2d", "joints2d_visible")
    out: dict[str, list] = {k: [] for k in keys}
    for first in tqdm(range(0, len(dataset), batch_size), desc="frames", unit="batch", disable=not progress):
        items = [dataset[i] for i in range(first, min(first + batch_size, len(dataset)))]
        net = model(torch.stack([it["image"] for it in items]))
        out["pred_pose"].append(net.pose)
        out["centres"].append(attention_centres(net.part_attention))
        for k in keys[2:]:
            out[k].append(torch.stack([it[k] for it in items]))
    return {k: torch.cat(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--dataset-root", type=Path, required=True)
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--every", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from pare_demo.checkpoints import CheckpointError
    from pare_demo.data.pw3d import read_pw3d
    from pare_demo.models import load_model

    try:
        model = load_model(args.checkpoint)
        samples = [s for s in read_pw3d(args.dataset_root, args.split, every=args.every) if s.has_3d]
    except (CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not samples:
        print(f"error: no frames with 3D ground truth in {args.dataset_root} ({args.split})", file=sys.stderr)
        return 2
    out = network_outputs(model, samples)
    rows = joint_report(out["pred_pose"], out["pose"], out["centres"], out["joints2d"], out["joints2d_visible"],
                        model.config.input_size)
    print(f"{len(samples)} frames; rotation error beside the truth's spread (deg), part centre to joint "
          f"(px in a {model.config.input_size} px crop), share nearer the mirrored joint")
    print(f"{'joint':15s} {'error':>6s} {'spread':>7s} {'median':>7s} {'mean':>6s} {'mirrored':>9s}")
    for r in rows:
        print(f"{r['joint']:15s} {r['rotation_error_deg']:6.1f} {r['truth_spread_deg']:7.1f} "
              f"{r['centre_error_px_median']:7.1f} {r['centre_error_px_mean']:6.1f} {r['nearer_mirrored_joint']:9.1%}")
    if args.json:
        args.json.write_text(json.dumps({"num_frames": len(samples), "dataset_root": str(args.dataset_root),
                                         "split": args.split, "joints": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
