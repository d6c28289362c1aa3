"""3DPW-protocol evaluation of a network on Samples with ground truth: used by the
training module's evaluate CLI and the app's 3DPW explorer.

Crops come from the ground-truth box (the protocol measures the regressor, not the
detector). Errors use the 14 LSP joints from the body model's evaluation regressor (the
H36M regressor's when J_regressor_h36m.npy sits beside the SMPL file), pelvis-aligned.
As SPIN, VIBE and PARE score 3DPW, the ground truth of men and women is posed with SMPL's
male and female models where their files are found (GroundTruthBodies.protocol), the
prediction with the network's own (neutral) body model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pare_demo import metrics
from pare_demo.body.model import BodyModel, load_gendered_models
from pare_demo.crop import crop_image, make_crop, square_around
from pare_demo.data.pw3d import camera_frame_pose
from pare_demo.data.samples import Sample
from pare_demo.images import load_image

# 3DPW-OCC, the occluded subset (Zhang et al., "Object-Occluded Human Shape and Pose
# Estimation", used by PARE): these recordings, all their takes (_00, _01, ...).
OCC_SEQUENCES = (
    "courtyard_backpack", "courtyard_basketball", "courtyard_bodyScannerMotions", "courtyard_box",
    "courtyard_golf", "courtyard_jacket", "courtyard_laceShoe", "downtown_stairs", "flat_guitar",
    "flat_packBags", "outdoors_climbing", "outdoors_crosscountry", "outdoors_fencing",
    "outdoors_freestyle", "outdoors_golf", "outdoors_parcours", "outdoors_slalom")


GENDERS = ("male", "female", "neutral")  # Sample.gender's values


class GroundTruthBodies:
    """The body models that pose the ground truth: gendered["male"] / gendered["female"] for
    the people of that gender where given, `neutral` for everyone else."""

    def __init__(self, neutral: BodyModel, gendered: dict[str, BodyModel] | None = None):
        self.neutral, self.gendered = neutral, dict(gendered or {})

    @classmethod
    def protocol(cls, neutral: BodyModel) -> GroundTruthBodies:
        """3DPW's protocol: SMPL's male and female models for men and women where their files
        are found (pare_demo.body.model.load_gendered_models), `neutral` for the rest; with
        neither file, `neutral` for all."""
        return cls(neutral, load_gendered_models(neutral.v_template.device))

    def for_gender(self, gender: str) -> BodyModel:
        return self.gendered.get(gender, self.neutral)

    def names(self) -> dict[str, str]:
        """Gender -> the model posing it, e.g. {"male": "SMPL_MALE.pkl", "female":
        "SMPL_FEMALE.pkl", "neutral": "open"}."""
        return {gender: self.for_gender(gender).label for gender in GENDERS}

    def groups(self, samples: list[Sample]) -> list[tuple[BodyModel, list[int]]]:
        """(model, indices of the samples it poses) for each model that poses any."""
        by_model: dict[BodyModel, list[int]] = {}
        for i, s in enumerate(samples):
            by_model.setdefault(self.for_gender(s.gender), []).append(i)
        return list(by_model.items())


def recording(sequence: str) -> str:
    """'courtyard_box_00' -> 'courtyard_box'."""
    head, _, take = sequence.rpartition("_")
    return head if take.isdigit() else sequence


@dataclass
class FrameResult:
    sample: Sample
    mpjpe: float
    pa_mpjpe: float
    pve: float
    joint_errors: np.ndarray   # (14,) mm after Procrustes
    pred_vertices: np.ndarray  # (V, 3) body frame
    gt_vertices: np.ndarray
    pred_eval_joints: np.ndarray
    gt_eval_joints: np.ndarray
    gt_body_model: str         # the label of the body model that posed the ground truth


@torch.inference_mode()
def evaluate_samples(predictor, samples: list[Sample], gt_bodies: GroundTruthBodies | None = None,
                     batch_size: int = 16, progress: bool = True) -> list[FrameResult]:
    """Per-frame errors of predictor's network on samples with 3D ground truth, the ground
    truth posed by gt_bodies (default: the predictor's body model for all)."""
    body = predictor.body_model
    samples = [s for s in samples if s.has_3d]
    results = []
    size = predictor.config.input_size
    for first in tqdm(range(0, len(samples), batch_size), desc="frames", disable=not progress,
                      unit="batch"):
        chunk = samples[first:first + batch_size]
        crops = []
        for s in chunk:
            center, side = square_around(s.bbox)
            crops.append(crop_image(load_image(s.image_path), make_crop(center, side, size)))
        _, pred = predictor.run_crops(np.stack(crops))
        results += score_frames(chunk, pred.vertices, body, gt_bodies)
    return results


@torch.inference_mode()
def score_frames(samples: list[Sample], pred_vertices: torch.Tensor, body,
                 gt_bodies: GroundTruthBodies | None = None) -> list[FrameResult]:
    """Errors of predicted bodies (B, V, 3) of `body`'s mesh against the samples' ground
    truth, each posed by gt_bodies' model for its gender (default: `body` for all)."""
    gt_bodies = gt_bodies or GroundTruthBodies(body)
    results: list[FrameResult | None] = [None] * len(samples)
    for gt_body, index in gt_bodies.groups(samples):
        scored = _score_frames([samples[i] for i in index], pred_vertices[index], body, gt_body)
        for i, result in zip(index, scored):
            results[i] = result
    return results


def _score_frames(samples: list[Sample], pred_vertices: torch.Tensor, body, gt_body) -> list[FrameResult]:
    """score_frames for samples whose ground truth one body model poses."""
    device = pred_vertices.device
    gt_pose = torch.tensor(np.stack([camera_frame_pose(s) for s in samples]), dtype=torch.float32, device=device)
    gt_betas = torch.tensor(np.stack([s.betas[:10] for s in samples]), dtype=torch.float32, device=device)
    gt = gt_body(betas=gt_betas, global_orient=gt_pose[:, :3], body_pose=gt_pose[:, 3:])
    pj, gj = body.eval_joints(pred_vertices), gt_body.eval_joints(gt.vertices)
    mpjpe = metrics.mpjpe(pj, gj)
    pa_joint = metrics.pa_mpjpe_per_joint(pj, gj)
    same_mesh = pred_vertices.shape == gt.vertices.shape
    pve = metrics.pve(pred_vertices, gt.vertices, pj, gj) if same_mesh else torch.full_like(mpjpe, float("nan"))
    return [FrameResult(s, float(mpjpe[i]), float(pa_joint[i].mean()), float(pve[i]),
                        pa_joint[i].cpu().numpy(), pred_vertices[i].cpu().numpy(),
                        gt.vertices[i].cpu().numpy(), pj[i].cpu().numpy(), gj[i].cpu().numpy(), gt_body.label)
            for i, s in enumerate(samples)]


def summarize(results: list[FrameResult]) -> dict:
    """Means over all frames, per sequence, and over the 3DPW-OCC sequences when present."""
    def means(rows):
        return {"mpjpe": float(np.mean([r.mpjpe for r in rows])),
                "pa_mpjpe": float(np.mean([r.pa_mpjpe for r in rows])),
                "pve": float(np.nanmean([r.pve for r in rows])) if any(np.isfinite(r.pve) for r in rows) else None,
                "num_frames": len(rows)}

    if not results:
        raise ValueError("no frames with 3D ground truth to evaluate")
    by_sequence: dict[str, list[FrameResult]] = {}
    for r in results:
        by_sequence.setdefault(r.sample.sequence, []).append(r)
    summary = {**means(results), "per_sequence": {k: means(v) for k, v in sorted(by_sequence.items())}}
    occ = [r for r in results if recording(r.sample.sequence) in OCC_SEQUENCES]
    if occ:
        summary["3dpw_occ"] = means(occ)
    return summary
