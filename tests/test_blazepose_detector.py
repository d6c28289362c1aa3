"""BlazePose's person detector: anchors, decoding, weighted suppression, letterboxing, the
network against ai-edge-litert, and people found in real photos."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from pare_demo import paths
from pare_demo.blazepose.detector import (INPUT_SIZE, ROI_SCALE, BlazePoseDetector, Candidates, body_square, decode,
                                          letterbox, merge_windows, ssd_anchors, tile_windows, TILES_MIN_SCORE,
                                          to_network_input, weighted_nms)
from pare_demo.detect import OpenCVPersonDetector, PersonDetector
from pare_demo.images import to_rgb_uint8
from pare_demo.optimize import torch_threads

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "real_photos"
needs_weights = pytest.mark.skipif(not paths.BLAZEPOSE_DETECTOR.exists(), reason="no converted BlazePose weights")


@pytest.fixture(scope="module")
def detector():
    return BlazePoseDetector()


def test_anchors_follow_mediapipes_grids():
    anchors = ssd_anchors()
    assert anchors.shape == (2254, 2)  # 28 x 28 x 2 + 14 x 14 x 2 + 7 x 7 x 6
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2], [1.5 / 28, 0.5 / 28])       # the next column, stride 8
    assert np.allclose(anchors[2 * 28], [0.5 / 28, 1.5 / 28])  # the next row
    assert np.allclose(anchors[1568], [0.5 / 14, 0.5 / 14])    # the stride-16 grid
    assert np.allclose(anchors[1960:1966], [0.5 / 7, 0.5 / 7])  # stride 32: three layers, 6 per cell
    assert np.allclose(anchors[1966], [1.5 / 7, 0.5 / 7])
    assert np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def _raw(anchors, index, logit, centre_px=(0.0, 0.0), size_px=44.8, keypoints_px=None):
    """Raw outputs where only anchor `index` scores: a box (offset from the anchor, in input
    pixels) and 4 keypoints."""
    boxes = np.zeros((len(anchors), 12), np.float32)
    scores = np.full((len(anchors), 1), -10.0, np.float32)
    add(boxes, scores, index, logit, centre_px, size_px, keypoints_px)
    return boxes, scores


def add(boxes, scores, index, logit, centre_px=(0.0, 0.0), size_px=44.8, keypoints_px=None):
    kp = np.zeros((4, 2)) if keypoints_px is None else np.asarray(keypoints_px, float)
    boxes[index] = [*centre_px, size_px, size_px, *kp.ravel()]
    scores[index] = logit


def test_decode_scales_by_224_around_the_anchor_and_thresholds_sigmoid_scores():
    anchors = ssd_anchors()
    i = (12 * 28 + 10) * 2  # stride 8, column 10, row 12
    boxes, scores = _raw(anchors, i, 2.0, centre_px=(2.24, -4.48), keypoints_px=[[22.4, 44.8]] * 4)
    add(boxes, scores, 100, 0.0)             # sigmoid 0.5: kept (MediaPipe keeps score >= threshold)
    add(boxes, scores, 200, -0.01)           # just under 0.5: dropped
    add(boxes, scores, 300, 1000.0)          # clipped to 100: score 1, no overflow
    add(boxes, scores, 400, 5.0, size_px=-1.0)  # negative size: dropped as MediaPipe does
    found = decode(boxes[None], scores[None], anchors, min_score=0.5)
    assert len(found) == 3
    first = np.flatnonzero(np.isclose(found.scores, 1 / (1 + math.exp(-2))))[0]
    cx, cy = (10.5 / 28 + 0.01, 12.5 / 28 - 0.02)
    assert np.allclose(found.boxes[first], [cx - 0.1, cy - 0.1, cx + 0.1, cy + 0.1], atol=1e-6)
    assert np.allclose(found.keypoints[first], anchors[i] + [0.1, 0.2], atol=1e-6)
    assert np.isclose(found.scores.max(), 1.0) and np.isclose(found.scores.min(), 0.5)


def test_weighted_nms_merges_overlapping_candidates_and_keeps_a_far_one():
    def box(cx, cy, side=0.2):
        return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]

    boxes = np.array([box(0.30, 0.30), box(0.33, 0.30), box(0.80, 0.80), box(0.30, 0.45)])
    # IoU of the first two: 0.17 x 0.2 / (2 x 0.04 - 0.034) = 0.74; of the first and the last: 0.14.
    keypoints = np.array([np.full((4, 2), v) for v in (0.3, 0.4, 0.8, 0.5)])
    scores = np.array([0.6, 0.9, 0.95, 0.7], np.float32)
    kept = weighted_nms(Candidates(boxes, keypoints, scores), iou_threshold=0.3)
    assert len(kept) == 3 and np.allclose(kept.scores, [0.95, 0.9, 0.7])  # best first; a group keeps its best score
    assert np.allclose(kept.boxes[0], boxes[2]) and np.allclose(kept.boxes[2], boxes[3])
    weights = np.array([0.9, 0.6]) / 1.5
    assert np.allclose(kept.boxes[1], weights @ boxes[[1, 0]])
    assert np.allclose(kept.keypoints[1], np.full((4, 2), weights @ [0.4, 0.3]))
    assert len(weighted_nms(Candidates(boxes[:0], keypoints[:0], scores[:0]))) == 0


def test_windows_merge_by_body_not_box():
    def candidate(hip, extent, score, face_side):
        face = np.array([hip[0] - face_side, hip[1] - 3 * face_side, hip[0] + face_side, hip[1] - face_side])
        return Candidates(face[None], np.array([[hip, extent, hip, extent]], float), np.array([score], np.float32))

    whole = candidate((100, 300), (100, 100), 0.9, 20)   # radius 200
    zoomed = candidate((110, 290), (105, 95), 0.8, 35)   # the same body seen larger: other face box
    neighbour = candidate((260, 300), (260, 100), 0.7, 20)
    merged = merge_windows([whole, zoomed, neighbour])
    assert np.allclose(merged.scores, [0.9, 0.7]) and np.allclose(merged.keypoints[0], whole.keypoints[0])


def test_tile_windows_cover_the_image():
    windows = tile_windows(480, 640)
    assert windows and all(x0 >= 0 and y0 >= 0 and x0 + s <= 640 and y0 + s <= 480 for x0, y0, s in windows)
    assert {s for *_, s in windows} == {480, 320}
    assert tile_windows(1000, 1000) and all(s < 1000 for *_, s in tile_windows(1000, 1000))


def test_body_square_follows_mediapipes_roi():
    centre, side, rotation = body_square(np.array([[100.0, 200.0], [100.0, 100.0], [0, 0], [0, 0]]))
    assert np.allclose(centre, [100, 200]) and np.isclose(side, 250) and np.isclose(rotation, 0)
    _, side, rotation = body_square(np.array([[100.0, 200.0], [130.0, 200.0], [0, 0], [0, 0]]))
    assert np.isclose(side, 75) and np.isclose(rotation, math.pi / 2)  # head to the right: clockwise
    _, _, rotation = body_square(np.array([[100.0, 200.0], [100.0, 260.0], [0, 0], [0, 0]]))
    assert np.isclose(abs(rotation), math.pi)  # upside down


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (50, 30), (1, 1), (3000, 2000)])
def test_letterbox_keeps_the_aspect_ratio_and_maps_back(shape):
    h, w = shape
    image = np.full((h, w, 3), 200, np.uint8)
    square, placement = letterbox(image)
    assert square.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    s = INPUT_SIZE / max(h, w)
    new_w, new_h = np.round(placement.scale * [w, h]).astype(int)
    assert (new_w, new_h) == (max(1, round(w * s)), max(1, round(h * s)))
    assert (square == 200).all(axis=2).sum() == new_w * new_h and (square > 0).any(axis=2).sum() == new_w * new_h
    assert np.allclose(placement.offset, [(INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2])
    corners = placement.to_image((np.array([[0, 0], [w, h]]) * placement.scale + placement.offset) / INPUT_SIZE)
    assert np.allclose(corners, [[0, 0], [w, h]])
    x = to_network_input(square)
    assert x.shape == (1, 3, INPUT_SIZE, INPUT_SIZE) and x.min() >= -1 and x.max() <= 1


def test_letterbox_refuses_what_is_not_rgb():
    with pytest.raises(ValueError, match="RGB"):
        letterbox(np.zeros((10, 10), np.uint8))


@needs_weights
@pytest.mark.slow
def test_raw_outputs_equal_litert(mediapipe_tflite_dir, litert_interpreter):
    """The torch detector's raw outputs equal ai-edge-litert's on the same letterboxed photo,
    within 1e-3 of the largest value; ONNX Runtime's equal the torch module's within 1e-4."""
    interpreter = litert_interpreter(model_path=str(mediapipe_tflite_dir / "pose_detection.tflite"), num_threads=2)
    interpreter.allocate_tensors()
    x = to_network_input(letterbox(data.astronaut()[:400])[0])
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1).copy())
    interpreter.invoke()
    outputs = {d["name"]: interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()}
    reference = outputs["Identity"], outputs["Identity_1"]  # boxes (2254, 12), score logits (2254, 1)
    # One PyTorch thread: two, on cores that other processes load, can take seconds a run.
    with torch_threads(1):
        torch_outputs = BlazePoseDetector(backend="torch").raw_outputs(x)
        for got, want in zip(torch_outputs, reference):
            assert got.shape == want.shape
            assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max()
        pytest.importorskip("onnxruntime")
        for got, want in zip(BlazePoseDetector(backend="onnx").raw_outputs(x), torch_outputs):
            assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@needs_weights
def test_finds_the_astronaut_and_nobody_in_the_coffee(detector):
    found = detector(data.astronaut())
    assert len(found) == 1 and found[0].source == "blazepose" and found[0].keypoints.shape == (4, 2)
    x0, y0, x1, y1 = found[0].box
    assert x0 < 180 and x1 > 270 and y0 < 70 and y1 > 160  # her face, around x 180-270, y 70-160
    # The box is MediaPipe's region of interest less its 1.25 margin (the predictor adds its own).
    centre, side, _ = body_square(found[0].keypoints)
    side /= ROI_SCALE
    assert np.allclose(found[0].box, [*(centre - side / 2), *(centre + side / 2)])
    assert detector(data.coffee()) == []
    assert detector(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector(np.zeros((1, 1, 3), np.uint8)) == []


@needs_weights
def test_person_detector_defaults_to_blazepose_and_falls_back(monkeypatch):
    detector = PersonDetector(prefer_torchvision=False)
    assert detector.name.startswith("blazepose")
    coffee = data.coffee()
    assert [d.source for d in detector(coffee)] == ["whole-image"]
    user = detector(coffee, boxes=[[10, 20, 110, 220]])
    assert user[0].source == "user" and np.allclose(user[0].box, [10, 20, 110, 220])
    monkeypatch.setattr(paths, "BLAZEPOSE_DETECTOR", Path("/nonexistent/pose_detection.pt"))
    assert isinstance(PersonDetector(prefer_torchvision=False).backend, OpenCVPersonDetector)


def _people_found(detector, annotations) -> tuple[int, list[str]]:
    """Annotated people whose labelled keypoints' centroid lies in a detection's box, each
    detection used at most once (greedily); and the misses."""
    found, missed = 0, []
    for image_info in annotations["images"]:
        image = np.asarray(Image.open(REAL_PHOTOS / image_info["file_name"]).convert("RGB"))
        boxes = [d.box for d in detector(image)]
        for person in (a for a in annotations["annotations"] if a["image_id"] == image_info["id"]):
            keypoints = np.asarray(person["keypoints"], float).reshape(17, 3)
            x, y = keypoints[keypoints[:, 2] > 0, :2].mean(axis=0)
            inside = [b is not None and b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes]
            hit = inside.index(True) if any(inside) else None
            if hit is None:
                missed.append(f"{image_info['file_name']} ({x:.0f}, {y:.0f})")
            else:
                boxes[hit] = None
                found += 1
    return found, missed


@needs_weights
@pytest.mark.slow
@pytest.mark.skipif(not (REAL_PHOTOS / "annotations.json").exists(), reason="no annotated real photos")
def test_finds_the_people_in_real_photos():
    """With tiles and verification: 20 of the 21 by this test's rule (the whole-image pass
    alone, MediaPipe's way: 12)."""
    annotations = json.loads((REAL_PHOTOS / "annotations.json").read_text())
    assert len(annotations["annotations"]) == 21
    found, missed = _people_found(BlazePoseDetector(tiles=True, verify=True), annotations)
    assert found >= 20, f"found {found} of 21; missed {missed}"


PEOPLE_FREE = ("coffee", "chelsea", "rocket", "coins", "moon", "hubble_deep_field", "immunohistochemistry",
               "brick", "grass", "gravel", "horse", "retina", "cell", "page", "text")


@needs_weights
@pytest.mark.slow
def test_verification_drops_what_is_not_a_person():
    """On skimage's photos without people, tiles at MediaPipe's score (0.5) find many
    candidates; the landmark network's presence flag drops every one, and keeps the people
    in the astronaut and camera photos, each with its landmark region."""
    loose = BlazePoseDetector(tiles=True, min_score=0.5)
    verified = BlazePoseDetector(tiles=True, verify=True)
    # Unverified looks (video frames) keep the stricter score of tiles.
    assert verified.min_score == 0.5 and verified.fast_min_score == TILES_MIN_SCORE > 0.5
    candidates = sum(len(loose(to_rgb_uint8(getattr(data, name)()))) for name in PEOPLE_FREE)
    assert candidates >= 10
    assert all(verified(to_rgb_uint8(getattr(data, name)())) == [] for name in PEOPLE_FREE)
    for name in ("astronaut", "camera"):
        people = verified(to_rgb_uint8(getattr(data, name)()))
        assert len(people) == 1 and people[0].region is not None and people[0].region.out_size == 256
    # Video frames: one unverified look at the whole image, no region.
    fast = verified(data.astronaut(), fast=True)
    assert len(fast) == 1 and fast[0].region is None



def test_same_person_compares_all_body_landmarks():
    """Two looks are one person when their body landmarks nearly coincide (relative to the
    body's radius), not when only their hips are close, as for people side by side."""
    from pare_demo.blazepose.detector import same_person
    from pare_demo.blazepose.pose_landmarks import LandmarkLook
    from pare_demo.crop import make_crop

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(100, 300, (39, 2)), np.ones((39, 2))], axis=1)
    region = make_crop(np.array([200.0, 200.0]), 250.0, 256)  # body radius 250 / 2.5 = 100 px

    def look(shift):
        moved = points.copy()
        moved[:, :2] += shift
        return LandmarkLook(presence=0.99, landmarks=moved, region=region)

    assert same_person(look(0.0), look([10.0, 0.0]))          # 0.1 radius
    assert not same_person(look(0.0), look([60.0, 0.0]))      # 0.6 radius: a neighbour
    side_by_side = look(0.0).landmarks.copy()
    side_by_side[:23, 0] += 150                                # all but the hips and legs moved
    assert not same_person(look(0.0), LandmarkLook(0.99, side_by_side, region))
