"""People in any image, from BlazePose's detector network (MediaPipe's pose detection).

    detector = BlazePoseDetector()
    people = detector(image_rgb_uint8)   # list[pare_demo.detect.Detection], best first

The steps and their constants follow MediaPipe's graph `modules/pose_detection/
pose_detection_cpu.pbtxt` (anchors, decoding, non-maximum suppression) and
`modules/pose_landmark/pose_detection_to_roi.pbtxt` (the body square):

1. letterbox: the image scaled to fit 224 x 224, aspect ratio kept, padded with black;
2. the network: 2254 raw boxes, each a face box and 4 keypoints relative to an SSD anchor;
3. decoding: sigmoid scores (logits clipped to +-100), boxes and keypoints in [0, 1];
4. weighted non-maximum suppression: overlapping boxes merged into their score-weighted mean;
5. back to image pixels, and each person's square from keypoints 0 (mid-hip) and 1.

MediaPipe keeps only the best detection (one person); here every one is kept. Optionally
(tiles=True, not MediaPipe's) the same runs on overlapping square windows too, for people
too small to be found in the whole image shrunk to 224 pixels. Optionally (verify=True)
each detection is then looked at by the landmark network, as MediaPipe's tracking does:
those without a person there (its presence flag) are dropped, and the others get the
region its landmarks put the body in (pare_demo.blazepose.pose_landmarks).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from pare_demo.blazepose.landmarks import BLAZEPOSE_LANDMARK_NAMES, ROI_SCALE, roi_square
from pare_demo.blazepose.pose_landmarks import MIN_PRESENCE, LandmarkLook
from pare_demo.boxes import box_iou
from pare_demo.detect import Detection

INPUT_SIZE = 224
# SsdAnchorsCalculator options. Layers of equal stride share one grid; each layer puts 2
# anchors on every cell (aspect ratio 1 and the interpolated scale). With
# fixed_anchor_size every anchor is 1 x 1, so only the centres matter.
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2
ANCHOR_OFFSET = 0.5
# TensorsToDetectionsCalculator options.
NUM_KEYPOINTS = 4
COORDINATE_SCALE = 224.0   # x_scale = y_scale = w_scale = h_scale
SCORE_CLIPPING = 100.0
# MediaPipe's Pose solution replaces the graph's min_score_thresh (0.2) by its own
# min_detection_confidence, 0.5 by default.
DEFAULT_MIN_SCORE = 0.5
# NonMaxSuppressionCalculator options (WEIGHTED, intersection over union).
NMS_IOU_THRESHOLD = 0.3
# Tiles (not MediaPipe's: its detector sees only the whole image, where people smaller than
# about a third of the image are missed): squares of these fractions of the short side.
TILE_SIDES = (1.0, 2 / 3)
TILE_OVERLAP = 0.25
# The min score with tiles and no verification: each window is one more chance of a false
# detection (at 0.5, 19 on 15 of skimage's photos without people, against 2 without tiles;
# 2 at 0.65). Verified by the landmark network's presence flag, tiles keep MediaPipe's 0.5:
# none of those 19 has a presence above 0.35; the people in skimage's photos have 0.98-0.99.
TILES_MIN_SCORE = 0.65
# Detections from different windows are one body when their mid-hips are this close, in
# body radii.
SAME_BODY_DISTANCE = 0.5
# Two verified detections are one person when the landmark network puts the 33 body
# landmarks this close on average, in body radii: two crops of one person gave 0.10
# (skimage's camera) and 0.22 (a dev photo); different people on the dev photos 0.53 or more.
SAME_PERSON_DISTANCE = 0.3
# Body square: AlignmentPointsRectsCalculator from keypoint 0 (mid-hip, the centre) to
# keypoint 1 (its distance is the body's half size, its direction the body's axis), then
# RectTransformationCalculator scales the square by 1.25.
HIP, BODY_EXTENT = 0, 1
ROI_TARGET_ANGLE = math.pi / 2   # a person standing upright: rotation 0
BODY_LANDMARKS = len(BLAZEPOSE_LANDMARK_NAMES)  # the 33 named ones, not the ROI and upper-body points


def ssd_anchors(input_size: int = INPUT_SIZE, strides=ANCHOR_STRIDES,
                per_layer: int = ANCHORS_PER_LAYER, offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1], in the network's output order: grid by grid
    (strides in order, equal strides merged), rows, columns, then the anchors of a cell."""
    centres = []
    for stride, layers in itertools.groupby(strides):  # consecutive equal strides: one grid
        cells = math.ceil(input_size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + offset) / cells
        centres.append(np.repeat(grid, per_layer * len(list(layers)), axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Candidates:
    """Detections, in the network input's normalised coordinates ([0, 1] over the 224
    square) as decoded, or in image pixels once moved."""
    boxes: np.ndarray       # (N, 4) x0, y0, x1, y1 (the face box)
    keypoints: np.ndarray   # (N, 4, 2) x, y: mid-hip, body extent, mid-shoulder, upper-body extent
    scores: np.ndarray      # (N,) in [0, 1]

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index) -> "Candidates":
        return Candidates(self.boxes[index], self.keypoints[index], self.scores[index])

    def moved(self, to_points) -> "Candidates":
        """The same candidates with every point (x, y) mapped by `to_points`."""
        boxes = to_points(self.boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        return Candidates(boxes, to_points(self.keypoints), self.scores)

    @staticmethod
    def concatenate(parts: list["Candidates"]) -> "Candidates":
        return Candidates(np.concatenate([p.boxes for p in parts]), np.concatenate([p.keypoints for p in parts]),
                          np.concatenate([p.scores for p in parts]))


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
           min_score: float = DEFAULT_MIN_SCORE) -> Candidates:
    """Raw network outputs (N, 12) and (N, 1) (or with a leading batch of 1) -> the
    candidates scoring at least `min_score`, in anchor order."""
    raw_boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(len(anchors), 4 + 2 * NUM_KEYPOINTS)
    logits = np.asarray(raw_scores, dtype=np.float64).reshape(len(anchors))  # exp(100) overflows float32
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -SCORE_CLIPPING, SCORE_CLIPPING)))
    values = raw_boxes / COORDINATE_SCALE  # x, y, w, h then the keypoints' x, y ("reverse output order")
    centres = values[:, 0:2] + anchors
    half = values[:, 2:4] / 2
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    keypoints = values[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    # MediaPipe drops boxes of negative (or NaN) size, which later steps cannot handle.
    keep = (scores >= min_score) & (half >= 0).all(axis=1)
    return Candidates(boxes[keep], keypoints[keep], scores[keep].astype(np.float32))


def weighted_nms(candidates: Candidates, iou_threshold: float = NMS_IOU_THRESHOLD) -> Candidates:
    """MediaPipe's WEIGHTED non-maximum suppression: the best remaining candidate and all
    those whose box overlaps its box by more than `iou_threshold` (intersection over union)
    become one detection, whose box and keypoints are their score-weighted mean and whose
    score is the best one's. Best first."""
    remaining = candidates.select(np.argsort(-candidates.scores, kind="stable"))
    boxes, keypoints, scores = [], [], []
    while len(remaining):
        group = box_iou(remaining.boxes[0], remaining.boxes)[0] > iou_threshold
        scores.append(remaining.scores[0])
        if not group.any():
            # A degenerate (empty) box overlaps nothing, not even itself: MediaPipe keeps it
            # as it is and stops there.
            boxes.append(remaining.boxes[0])
            keypoints.append(remaining.keypoints[0])
            break
        weights = remaining.scores[group]
        total = weights.sum()
        boxes.append((remaining.boxes[group] * weights[:, None]).sum(axis=0) / total)
        keypoints.append((remaining.keypoints[group] * weights[:, None, None]).sum(axis=0) / total)
        remaining = remaining.select(~group)
    if not scores:
        return candidates.select(slice(0, 0))
    return Candidates(np.stack(boxes), np.stack(keypoints), np.asarray(scores, dtype=np.float32))


def same_body(keypoints: np.ndarray, others: np.ndarray, max_distance: float = SAME_BODY_DISTANCE) -> np.ndarray:
    """(N,) whether each of `others` (N, 4, 2) is taken for the body of `keypoints` (4, 2):
    their mid-hips are within max_distance x the smaller body radius (|keypoint 1 - keypoint 0|)."""
    radius = np.minimum(np.linalg.norm(keypoints[BODY_EXTENT] - keypoints[HIP]),
                        np.linalg.norm(others[:, BODY_EXTENT] - others[:, HIP], axis=-1))
    return np.linalg.norm(others[:, HIP] - keypoints[HIP], axis=-1) <= max_distance * radius


def merge_windows(parts: list[Candidates], max_distance: float = SAME_BODY_DISTANCE) -> Candidates:
    """Detections from several windows (image pixels) -> one per body, best first: the best
    one is kept and those taken for the same body (same_body) dropped. Not by box overlap:
    a detection's box follows the window's zoom rather than the person. Not averaged either:
    a partial view of a body in a small window may put its keypoints elsewhere."""
    merged = Candidates.concatenate(parts)
    remaining = merged.select(np.argsort(-merged.scores, kind="stable"))
    kept = []
    while len(remaining):
        kept.append(remaining.select(slice(0, 1)))
        others = remaining.select(slice(1, None))
        remaining = others.select(~same_body(remaining.keypoints[0], others.keypoints, max_distance))
    return Candidates.concatenate(kept) if kept else merged


@dataclass(frozen=True)
class Letterbox:
    """Where an image (or a window of it) lies in the square network input: input pixel =
    (image pixel - origin) * scale + offset, per axis (x, y); pixel coordinates run from 0
    at a pixel's outer edge."""
    scale: np.ndarray    # (2,)
    offset: np.ndarray   # (2,) the padding on the left and top, input pixels
    size: int = INPUT_SIZE
    origin: tuple[float, float] = (0.0, 0.0)  # the window's top left corner in the image

    def to_image(self, normalised: np.ndarray) -> np.ndarray:
        """(..., 2) points in [0, 1] over the network input -> image pixels."""
        points = (np.asarray(normalised, dtype=np.float64) * self.size - self.offset) / self.scale
        return points + np.asarray(self.origin)


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Any H x W x 3 uint8 image -> (size x size x 3 uint8 with black padding, its Letterbox).
    The image is centred."""
    if image.ndim != 3 or image.shape[2] != 3 or not image.size:
        raise ValueError(f"expected an RGB image, H x W x 3, not an array of shape {image.shape}")
    h, w = image.shape[:2]
    s = size / max(h, w)
    new_w, new_h = min(size, max(1, round(w * s))), min(size, max(1, round(h * s)))
    resized = _resize(np.ascontiguousarray(image), new_w, new_h)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[top:top + new_h, left:left + new_w] = resized.reshape(new_h, new_w, 3)
    return square, Letterbox(np.array([new_w / w, new_h / h]), np.array([left, top], dtype=np.float64), size)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear, after averaging blocks of k x k pixels when shrinking k >= 2 times: about
    as smooth as cv2.INTER_AREA (no aliasing), several times faster at uneven ratios."""
    k = min(image.shape[1] // width, image.shape[0] // height)
    if k >= 2:
        image = cv2.resize(image, (image.shape[1] // k, image.shape[0] // k), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def tile_windows(height: int, width: int, sides=TILE_SIDES,
                 min_overlap: float = TILE_OVERLAP) -> list[tuple[int, int, int]]:
    """Square windows (x0, y0, side) over an image, to find people too small to be found in
    the whole image shrunk to 224: for each fraction in `sides` of the image's short side,
    a grid of squares of that side, neighbours overlapping by at least `min_overlap` of it.
    A side covering the whole image (a square image's short side) adds nothing: skipped."""
    windows = []
    for fraction in sides:
        side = max(1, round(min(height, width) * fraction))
        if side >= max(height, width):
            continue
        for y0 in _window_starts(height, side, min_overlap):
            for x0 in _window_starts(width, side, min_overlap):
                windows.append((x0, y0, side))
    return windows


def _window_starts(length: int, side: int, min_overlap: float) -> list[int]:
    """Evenly spread starts of windows of `side` pixels covering [0, length)."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / (side * (1 - min_overlap))) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def to_network_input(square: np.ndarray) -> np.ndarray:
    """size x size x 3 uint8 RGB -> (1, 3, size, size) float32 in [-1, 1]."""
    x = square.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def body_square(keypoints: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre (2,), side, rotation in radians) of MediaPipe's region of interest for the
    landmark network, from a detection's (4, 2) keypoints in image pixels: centred on the
    mid-hip, side 2 x 1.25 x |keypoint 1 - keypoint 0|, rotated so that the body's axis
    (mid-hip -> keypoint 1) is the square's up direction; rotation is clockwise on screen
    (MediaPipe's convention), 0 for an upright body, pi / 2 for one whose head points right."""
    centre, side = roi_square(keypoints[HIP], keypoints[BODY_EXTENT])
    dx, dy = np.asarray(keypoints[BODY_EXTENT], dtype=np.float64) - centre
    angle = ROI_TARGET_ANGLE - math.atan2(-dy, dx)  # y flipped: image rows grow downwards
    rotation = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))  # in [-pi, pi)
    return centre, side, rotation


def square_box(centre: np.ndarray, side: float) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of the axis-aligned square; it may reach outside the image."""
    half = side / 2
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


class BlazePoseDetector:
    """BlazePose's detector: every person in an RGB uint8 image, best score first.

    backend: "torch" (the converted network run eagerly, the reference), "onnx" (the same
    network exported once to ONNX Runtime; results equal within 1e-4) or "auto" (ONNX
    Runtime when installed, which is faster on a CPU).
    min_score: MediaPipe's min_detection_confidence; None: 0.5 (MediaPipe's default), or
    TILES_MIN_SCORE with tiles and no verification.
    tiles: also look in overlapping square windows (tile_windows: 4 to 11 more network runs
    for usual photos) and merge what all windows find; finds people too small for the
    whole-image pass, at that cost in time and some more false detections.
    verify: run the landmark network on each detection (about 4 ms each): drop those whose
    presence flag is below pose_landmarks.MIN_PRESENCE, give the others their landmark
    region (Detection.region)."""

    def __init__(self, weights: str | Path | None = None, backend: str = "auto",
                 min_score: float | None = None, iou_threshold: float = NMS_IOU_THRESHOLD,
                 tiles: bool = False, verify: bool = False):
        from pare_demo import paths
        from pare_demo.blazepose.runtime import load_network

        self.weights = Path(weights) if weights else paths.BLAZEPOSE_DETECTOR
        self.network = load_network(self.weights, backend)
        # Unverified looks (all, or fast ones) keep the stricter score of tiles.
        self.fast_min_score = min_score if min_score is not None else TILES_MIN_SCORE if tiles else DEFAULT_MIN_SCORE
        self.min_score = min_score if min_score is not None else DEFAULT_MIN_SCORE if verify else self.fast_min_score
        self.iou_threshold = iou_threshold
        self.tiles = tiles
        self.landmark_network = None
        if verify:
            from pare_demo.blazepose.pose_landmarks import PoseLandmarkNetwork

            self.landmark_network = PoseLandmarkNetwork(backend=backend)
        self.anchors = ssd_anchors()

    @property
    def name(self) -> str:
        extras = [self.network.backend] + ["tiles"] * self.tiles + ["verified"] * (self.landmark_network is not None)
        return f"blazepose ({', '.join(extras)})"

    def raw_outputs(self, network_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 3, 224, 224) float32 in [-1, 1] -> raw boxes (2254, 12), raw score logits (2254, 1)."""
        out = self.network(network_input)
        return out["boxes"][0], out["scores"][0]

    def candidates(self, image: np.ndarray, window: tuple[int, int, int] | None = None,
                   min_score: float | None = None) -> Candidates:
        """What MediaPipe's graph finds in the image (or in a square window (x0, y0, side)
        of it), after suppression, in image pixels. min_score: None: self.min_score."""
        if window is not None:
            x0, y0, side = window
            image = image[y0:y0 + side, x0:x0 + side]
        square, placement = letterbox(image)
        if window is not None:
            placement = replace(placement, origin=(float(x0), float(y0)))
        raw_boxes, raw_scores = self.raw_outputs(to_network_input(square))
        min_score = self.min_score if min_score is None else min_score
        found = weighted_nms(decode(raw_boxes, raw_scores, self.anchors, min_score), self.iou_threshold)
        return found.moved(placement.to_image)

    def __call__(self, image: np.ndarray, fast: bool = False) -> list[Detection]:
        """fast: one look at the whole image, unverified (video frames)."""
        if fast:
            found = self.candidates(image, min_score=self.fast_min_score)
        else:
            found = self.candidates(image)
            windows = tile_windows(*image.shape[:2]) if self.tiles else []
            if windows:
                found = merge_windows([found] + [self.candidates(image, w) for w in windows])
        detections = []
        for keypoints, score in zip(found.keypoints, found.scores):
            centre, side, _ = body_square(keypoints)
            # The body's own square, without MediaPipe's ROI margin: the predictor adds its crop
            # margin (crop.DEFAULT_SCALE), as around any person box.
            detections.append(Detection(square_box(centre, side / ROI_SCALE), float(score), "blazepose",
                                        keypoints=keypoints))
        if fast or self.landmark_network is None:
            return detections
        return self.verified(image, detections)

    def verified(self, image: np.ndarray, detections: list[Detection]) -> list[Detection]:
        """The detections where the landmark network finds a person, with its region; of
        two where it finds the same person (same_person), the better scored."""
        kept: list[tuple[Detection, LandmarkLook]] = []
        for det in sorted(detections, key=lambda d: -d.score):
            look = self.landmark_network.look(image, det.box)
            if look.presence >= MIN_PRESENCE and not any(same_person(look, other) for _, other in kept):
                kept.append((replace(det, region=look.region), look))
        return [det for det, _ in kept]


def same_person(a: LandmarkLook, b: LandmarkLook, max_distance: float = SAME_PERSON_DISTANCE) -> bool:
    """Whether two looks found the same person: their 33 body landmarks are on average
    within max_distance x the smaller body radius of each other (people side by side differ
    by their whole width, and their hips alone could be close)."""
    radius = min(a.region.size, b.region.size) / (2 * ROI_SCALE)
    gap = np.linalg.norm(a.landmarks[:BODY_LANDMARKS, :2] - b.landmarks[:BODY_LANDMARKS, :2], axis=-1).mean()
    return bool(gap <= max_distance * radius)
