"""BlazePose's landmarks, and where each SMPL joint lies among them.

The landmark network predicts 39 points: the 33 body landmarks below, then the hip centre
and a body-scale point the ROI is built from, and 4 more for the upper body; "left" is the
person's left, as in SMPL.
"""
from __future__ import annotations

import numpy as np

from pare_demo.body.joint_names import SMPL_JOINT_NAMES

BLAZEPOSE_LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
NUM_LANDMARK_CHANNELS = 39  # heatmap channels of pose_landmark_full

_HIPS = {"left_hip": 0.5, "right_hip": 0.5}
_SHOULDERS = {"left_shoulder": 0.5, "right_shoulder": 0.5}


def _blend(*parts: tuple[dict, float]) -> dict:
    out: dict[str, float] = {}
    for weights, share in parts:
        for name, w in weights.items():
            out[name] = out.get(name, 0.0) + w * share
    return out


# Each SMPL joint as a weighted mix of landmarks. Joints BlazePose has are themselves; the
# spine is interpolated between the hip and shoulder centres, the hands and feet between
# their landmarks. A starting point for the part branch, which training refines.
SMPL_FROM_LANDMARKS: dict[str, dict[str, float]] = {
    "pelvis": _HIPS,
    "left_hip": {"left_hip": 1.0}, "right_hip": {"right_hip": 1.0},
    "spine1": _blend((_HIPS, 0.75), (_SHOULDERS, 0.25)),
    "left_knee": {"left_knee": 1.0}, "right_knee": {"right_knee": 1.0},
    "spine2": _blend((_HIPS, 0.5), (_SHOULDERS, 0.5)),
    "left_ankle": {"left_ankle": 1.0}, "right_ankle": {"right_ankle": 1.0},
    "spine3": _blend((_HIPS, 0.3), (_SHOULDERS, 0.7)),
    "left_foot": {"left_foot_index": 0.7, "left_ankle": 0.3},
    "right_foot": {"right_foot_index": 0.7, "right_ankle": 0.3},
    "neck": _blend((_SHOULDERS, 0.8), ({"nose": 1.0}, 0.2)),
    "left_collar": {"left_shoulder": 0.6, "right_shoulder": 0.4},
    "right_collar": {"right_shoulder": 0.6, "left_shoulder": 0.4},
    "head": {"nose": 0.4, "left_ear": 0.3, "right_ear": 0.3},
    "left_shoulder": {"left_shoulder": 1.0}, "right_shoulder": {"right_shoulder": 1.0},
    "left_elbow": {"left_elbow": 1.0}, "right_elbow": {"right_elbow": 1.0},
    "left_wrist": {"left_wrist": 1.0}, "right_wrist": {"right_wrist": 1.0},
    "left_hand": {"left_index": 0.5, "left_pinky": 0.5},
    "right_hand": {"right_index": 0.5, "right_pinky": 0.5},
}


def smpl_from_landmarks_matrix() -> np.ndarray:
    """(24, 39): row j mixes the landmark heatmap channels into SMPL joint j's."""
    matrix = np.zeros((len(SMPL_JOINT_NAMES), NUM_LANDMARK_CHANNELS), dtype=np.float32)
    for j, joint in enumerate(SMPL_JOINT_NAMES):
        for name, weight in SMPL_FROM_LANDMARKS[joint].items():
            matrix[j, BLAZEPOSE_LANDMARK_NAMES.index(name)] = weight
    return matrix


# MediaPipe's region of interest for the landmark network: centred on a body's hip centre,
# side 2 x ROI_SCALE x its distance to the body-scale point (RectTransformationCalculator's
# scale). The detector gives both as its keypoints 0 and 1 (pare_demo.blazepose.detector.
# body_square, which also turns the square upright), the landmark network as landmarks 33, 34.
ROI_CENTRE, ROI_SCALE_POINT = 33, 34
ROI_SCALE = 1.25


def roi_square(hip_centre, scale_point) -> tuple[np.ndarray, float]:
    """Centre (2,) and side of MediaPipe's region of interest from two points in pixels."""
    centre = np.asarray(hip_centre, dtype=np.float64)
    return centre, 2.0 * ROI_SCALE * float(np.linalg.norm(np.asarray(scale_point, dtype=np.float64) - centre))


def roi_from_landmarks(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(39, 2) landmarks in image pixels -> centre (2,) and side of the square the landmark
    network would look at next (unrotated)."""
    return roi_square(points[ROI_CENTRE], points[ROI_SCALE_POINT])
