"""How well a predictor does on real photos with COCO keypoint annotations
(pare_demo.data.coco_keypoints), per source ("coco", "mpii", "h36m", ...) and overall.

    results = evaluate_photos(predictor, read_coco_keypoints("annotations.json"))

Figures, all on the 12 limb joints (COCO 5-16 <-> their SMPL namesakes):
- people found: annotated people matched by a detected person (the predictor's own
  detector; its whole-image fallback finds nobody), greedily by IoU, best pair first;
- PCK of the projected joints (Prediction.joints2d) against the labelled keypoints, the
  threshold a fraction of the longer side of the person's labelled keypoints' extent:
  with the detector (matched people only, and counting unmatched people as all wrong)
  and with the annotated boxes;
- PCK@0.15 of each limb part's attention peak, with the annotated boxes;
- MPJPE and PA-MPJPE (mm, mid-hip aligned) against keypoints_3d, with the annotated boxes.
The same figures per person ("people"): on a set this small one person can swing an average.

No rendering, two predictor calls per image: cheap enough to run every training epoch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from pare_demo import metrics
from pare_demo.body.joint_names import COCO_KEYPOINT_NAMES, COCO_LIMB_INDICES, COCO_LIMB_TO_SMPL
from pare_demo.boxes import box_iou
from pare_demo.crop import Crop, crop_to_image_points, square_around
from pare_demo.data.coco_keypoints import AnnotatedImage, PersonAnnotation
from pare_demo.images import load_image

PCK_THRESHOLDS = (0.05, 0.1, 0.2)
ATTENTION_PCK_THRESHOLD = 0.15
MATCH_IOU = 0.5
LIMB_NAMES = tuple(COCO_KEYPOINT_NAMES[i] for i in COCO_LIMB_INDICES)
LIMB_HIPS = (LIMB_NAMES.index("left_hip"), LIMB_NAMES.index("right_hip"))
# Why the squares: the annotated boxes follow two conventions (COCO: the visible extent;
# MPII and Human3.6M: a square of the person's scale) and the detectors give full-body boxes
# (a face-based one extends below the picture's edge), so a plain IoU of 0.5 misses even a
# perfect box of a standing person in a square annotation (IoU ~0.4). Comparing the squares
# the predictor crops around each box removes the aspect ratio and measures what the network
# sees. The plain box IoU is reported beside it.
# The limb joints only: MPII and Human3.6M label no face keypoints, COCO does, so counting
# them would give COCO people a larger reference (looser thresholds) than the others.
PCK_REFERENCE = "longer side of the box around the person's labelled limb keypoints (COCO 5-16)"
MATCHING_RULE = (f"greedy, highest IoU first, IoU >= {MATCH_IOU} between the squares "
                 "(pare_demo.crop.square_around) of the detected and the annotated box; "
                 "whole-image fallbacks never match")


def crop_square(box) -> np.ndarray:
    """The square x0, y0, x1, y1 the predictor first crops around a box (before refining it
    on BlazePose's landmarks): the box's own square, whatever the network then sees."""
    center, side = square_around(box)
    return np.concatenate([center - side / 2, center + side / 2])


def match_boxes(predicted, annotated, threshold: float = MATCH_IOU,
                to_region: Callable = crop_square) -> dict[int, int]:
    """Greedy one-to-one matching, highest IoU of the boxes' regions first:
    {annotated index: predicted index} for the pairs with IoU >= threshold."""
    regions_p = [to_region(b) for b in predicted]
    regions_a = [to_region(b) for b in annotated]
    ious = box_iou(regions_p, regions_a) if regions_p and regions_a else np.zeros((0, 0))
    pairs = sorted(((float(ious[j, i]), i, j) for j in range(len(regions_p)) for i in range(len(regions_a))),
                   reverse=True)
    matches: dict[int, int] = {}
    for iou, i, j in pairs:
        if iou < threshold:
            break
        if i not in matches and j not in matches.values():
            matches[i] = j
    return matches


def keypoint_extent(keypoints: np.ndarray) -> float:
    """Longer side of the box around the labelled keypoints of a (J, 3) x, y, v array."""
    points = keypoints[keypoints[:, 2] > 0, :2]
    if len(points) == 0:
        return 0.0
    return float((points.max(axis=0) - points.min(axis=0)).max())


def normalised_errors(predicted: np.ndarray, target: np.ndarray, reference: float) -> np.ndarray:
    """(J,) distances between (J, 2) point sets, in units of reference."""
    return np.linalg.norm(predicted - target, axis=-1) / max(reference, 1e-9)


def pck(errors: np.ndarray, threshold: float) -> float:
    """Fraction of normalised errors at or inside threshold (nan for none)."""
    errors = np.asarray(errors)
    return float(np.mean(errors <= threshold)) if errors.size else float("nan")


def attention_peaks(attention: np.ndarray, crop: Crop) -> np.ndarray:
    """(K, h, w) maps over a crop -> (K, 2) full-image pixels of each map's peak.
    Map cell (u, v) covers crop pixels [u, u + 1) * out_size / w; its centre is
    (u + 0.5) * out_size / w - 0.5 in pixel-centre coordinates (as crop_map_to_image)."""
    k, h, w = attention.shape
    flat = attention.reshape(k, -1).argmax(axis=1)
    v, u = np.divmod(flat, w)
    in_crop = np.stack([(u + 0.5) * crop.out_size / w - 0.5, (v + 0.5) * crop.out_size / h - 0.5], axis=-1)
    return crop_to_image_points(in_crop, crop)


def mpjpe_mm(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(MPJPE, PA-MPJPE) in mm of (12, 3) limb joints in metres, mid-hip aligned."""
    p = torch.as_tensor(predicted, dtype=torch.float64)[None]
    t = torch.as_tensor(target, dtype=torch.float64)[None]
    return float(metrics.mpjpe(p, t, LIMB_HIPS)[0]), float(metrics.pa_mpjpe(p, t)[0])


@dataclass
class PersonResult:
    """One annotated person's errors; normalised 2D errors are over the labelled limb joints."""
    source: str
    found: bool                         # matched by the square-crop rule (MATCHING_RULE)
    found_plain_iou: bool               # matched by IoU >= MATCH_IOU of the boxes themselves
    detector_errors: np.ndarray | None  # None when not found
    box_errors: np.ndarray
    attention_errors: np.ndarray
    mpjpe: float | None = None          # mm, where keypoints_3d has all 12 limb joints
    pa_mpjpe: float | None = None
    image: str = ""                     # the image's file name, and the person's place in it
    index: int = 0

    def row(self) -> dict:
        """This person's figures, as one row of the per-person table."""
        def block(errors, thresholds):
            return None if errors is None else pck_figures(errors, thresholds)

        return {"image": self.image, "person": self.index, "source": self.source, "found": self.found,
                "joints": int(self.box_errors.size),
                "pck_detector": block(self.detector_errors, PCK_THRESHOLDS),
                "pck_annotated_boxes": block(self.box_errors, PCK_THRESHOLDS),
                "attention_peaks": block(self.attention_errors, (ATTENTION_PCK_THRESHOLD,)),
                "mpjpe_mm": self.mpjpe, "pa_mpjpe_mm": self.pa_mpjpe}


def evaluate_photos(predictor, dataset: list[AnnotatedImage],
                    progress: Callable[[Iterable], Iterable] | None = None) -> dict:
    """All figures per source and overall, as a JSON-serialisable dict.
    progress: wraps the loop over images (tqdm, say)."""
    images = [image for image in dataset if image.people]
    people: list[PersonResult] = []
    for image in progress(images) if progress else images:
        people += evaluate_image(predictor, image)
    sources = sorted({p.source for p in people})
    return {
        "config": {
            "checkpoint": predictor.description,
            "joints_coco": list(LIMB_NAMES),
            "joints_smpl_indices": list(COCO_LIMB_TO_SMPL),
            "pck_thresholds": list(PCK_THRESHOLDS),
            "pck_reference": PCK_REFERENCE,
            "attention_pck_threshold": ATTENTION_PCK_THRESHOLD,
            "match_iou": MATCH_IOU,
            "matching_rule": MATCHING_RULE,
            "mpjpe_alignment": "mid-hip (mean of the two hips); PA: similarity Procrustes on the 12 joints",
            "pck_detector": "matched people only",
            "pck_detector_all": "every annotated person; an unmatched one counts all its labelled joints wrong",
            "images": len(images),
        },
        "by_source": {s: summarize([p for p in people if p.source == s]) for s in sources},
        "overall": summarize(people),
        "people": [p.row() for p in people],
    }


def evaluate_image(predictor, image: AnnotatedImage) -> list[PersonResult]:
    pixels = load_image(image.path)
    boxes = np.stack([person.bbox for person in image.people])
    found = predictor.predict(pixels)
    detected = [] if found.nobody_found else found.people
    detected_boxes = [p.bbox for p in detected]
    matches = match_boxes(detected_boxes, boxes)
    plain = match_boxes(detected_boxes, boxes, to_region=lambda b: b)
    with_boxes = predictor.predict(pixels, boxes=boxes).people
    results = []
    for i, (person, prediction) in enumerate(zip(image.people, with_boxes)):
        found = detected[matches[i]] if i in matches else None
        results.append(score_person(image.source, person, prediction, found, i in plain,
                                    image=image.path.name, index=i))
    return results


def score_person(source: str, person: PersonAnnotation, prediction, detected=None,
                 found_plain_iou: bool = False, image: str = "", index: int = 0) -> PersonResult:
    """Errors of one annotated person: prediction from its annotated box, detected: the
    matched detection's prediction or None."""
    keypoints = person.keypoints[list(COCO_LIMB_INDICES)]
    labelled = keypoints[:, 2] > 0
    target = keypoints[labelled, :2]
    reference = keypoint_extent(keypoints)
    smpl = np.array(COCO_LIMB_TO_SMPL)[labelled]

    def errors(points):
        return normalised_errors(points[smpl], target, reference)

    result = PersonResult(
        source=source, found=detected is not None, found_plain_iou=found_plain_iou,
        detector_errors=None if detected is None else errors(detected.joints2d),
        box_errors=errors(prediction.joints2d),
        attention_errors=errors(attention_peaks(prediction.part_attention, prediction.crop)),
        image=image, index=index)
    if person.keypoints_3d is not None:
        target_3d = person.keypoints_3d[list(COCO_LIMB_INDICES)]
        if np.isfinite(target_3d).all():
            result.mpjpe, result.pa_mpjpe = mpjpe_mm(prediction.joints3d[list(COCO_LIMB_TO_SMPL)], target_3d)
    return result


def summarize(people: list[PersonResult]) -> dict:
    """The figures over a group of people, each with the people and joints it counts."""
    def pck_block(error_lists, thresholds):
        errors = np.concatenate(error_lists) if error_lists else np.zeros(0)
        return {**pck_figures(errors, thresholds), "people": len(error_lists), "joints": int(errors.size)}

    found = [p for p in people if p.found]
    # An unmatched person's labelled joints count as misses: an infinite error.
    all_errors = [p.detector_errors if p.found else np.full(p.box_errors.shape, np.inf) for p in people]
    with_3d = [p for p in people if p.mpjpe is not None]
    return {
        "detection": {"people": len(people), "found": len(found),
                      "found_plain_iou": sum(p.found_plain_iou for p in people)},
        "pck_detector": pck_block([p.detector_errors for p in found], PCK_THRESHOLDS),
        "pck_detector_all": pck_block(all_errors, PCK_THRESHOLDS),
        "pck_annotated_boxes": pck_block([p.box_errors for p in people], PCK_THRESHOLDS),
        "attention_peaks": pck_block([p.attention_errors for p in people], (ATTENTION_PCK_THRESHOLD,)),
        "joints3d": {"mpjpe_mm": _number(np.mean([p.mpjpe for p in with_3d])) if with_3d else None,
                     "pa_mpjpe_mm": _number(np.mean([p.pa_mpjpe for p in with_3d])) if with_3d else None,
                     "people": len(with_3d), "joints": len(with_3d) * len(LIMB_NAMES)},
    }


def pck_figures(errors: np.ndarray, thresholds) -> dict:
    """{"pck@T": fraction within T (None where no joint is labelled)} for each threshold."""
    return {f"pck@{t:g}": _number(pck(errors, t)) for t in thresholds}


def _number(value: float) -> float | None:
    """JSON has no nan."""
    return None if not np.isfinite(value) else float(value)
