"""Real-photo evaluation: the COCO keypoint reader, the metric functions on hand-made
numbers, and a small run on the annotated photos beside the repository."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pare_demo.crop import crop_map_to_image, make_crop
from pare_demo.data.coco_keypoints import read_coco_keypoints
from pare_demo.photo_evaluation import (attention_peaks, evaluate_photos, keypoint_extent, match_boxes,
                                        mpjpe_mm, normalised_errors, pck, score_person, summarize)
from training.evaluate_photos import main as evaluate_photos_cli, people_table, results_table

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "real_photos"
# SMPL index of each COCO limb keypoint 5..16, written out by hand.
SMPL_OF_COCO_LIMB = {5: 16, 6: 17, 7: 18, 8: 19, 9: 20, 10: 21, 11: 1, 12: 2, 13: 4, 14: 5, 15: 7, 16: 8}


def coco_keypoints(points: dict[int, tuple[float, float]]) -> list[float]:
    """The flat 51-number COCO list, v = 2 for the given keypoints and 0 elsewhere."""
    flat = []
    for j in range(17):
        x, y = points.get(j, (0.0, 0.0))
        flat += [x, y, 2 if j in points else 0]
    return flat


def write_annotations(folder: Path, data) -> Path:
    path = folder / "person_keypoints_test.json"
    path.write_text(json.dumps(data))
    return path


# --- the reader

def test_reader(tmp_path):
    limbs = {j: (10.0 * j, 20.0 * j) for j in range(5, 17)}
    points_3d = [None] * 5 + [[0.1 * j, 0.2, 3.0] for j in range(5, 17)]
    path = write_annotations(tmp_path, {
        "images": [{"id": 7, "file_name": "images/a.jpg", "width": 640, "height": 480},
                   {"id": 8, "file_name": "b.jpg", "width": 100, "height": 50, "source": "h36m"}],
        "annotations": [
            {"id": 1, "image_id": 7, "iscrowd": 0, "bbox": [10, 20, 30, 40], "keypoints": coco_keypoints(limbs)},
            {"id": 2, "image_id": 7, "iscrowd": 1, "bbox": [0, 0, 5, 5], "keypoints": coco_keypoints(limbs)},
            {"id": 3, "image_id": 7, "bbox": [0, 0, 5, 5], "keypoints": coco_keypoints({})},
            {"id": 4, "image_id": 8, "bbox": [1, 2, 3, 4], "keypoints": coco_keypoints({0: (5, 6)}),
             "keypoints_3d": points_3d},
        ]})
    first, second = read_coco_keypoints(path)
    assert first.path == tmp_path / "images" / "a.jpg" and (first.width, first.height) == (640, 480)
    assert first.source == "coco" and second.source == "h36m"
    assert [p.id for p in first.people] == [1]  # the crowd and the unlabelled person are skipped
    person = first.people[0]
    np.testing.assert_array_equal(person.bbox, [10, 20, 40, 60])
    assert person.keypoints.shape == (17, 3) and person.keypoints_3d is None
    np.testing.assert_array_equal(person.labelled, [False] * 5 + [True] * 12)
    np.testing.assert_array_equal(person.keypoints[13], [130, 260, 2])
    k3d = second.people[0].keypoints_3d
    assert k3d.shape == (17, 3) and np.isnan(k3d[:5]).all()
    np.testing.assert_allclose(k3d[6], [0.6, 0.2, 3.0])


@pytest.mark.parametrize("data, message", [
    ({"images": []}, "'images' and 'annotations'"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 1}], "annotations": []}, "missing height"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 1, "height": 1}],
      "annotations": [{"image_id": 2, "bbox": [0, 0, 1, 1], "keypoints": coco_keypoints({5: (1, 1)})}]},
     "image_id 2"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 1, "height": 1}],
      "annotations": [{"image_id": 1, "bbox": [0, 0, 1], "keypoints": coco_keypoints({5: (1, 1)})}]},
     "bbox"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 1, "height": 1}],
      "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "keypoints": coco_keypoints({5: (1, 1)}),
                       "keypoints_3d": [[0, 0, 1]] * 16}]},
     "keypoints_3d"),
])
def test_reader_rejects_malformed_files(tmp_path, data, message):
    path = write_annotations(tmp_path, data)
    with pytest.raises(ValueError, match=message) as err:
        read_coco_keypoints(path)
    assert path.name in str(err.value)


def test_reader_rejects_non_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        read_coco_keypoints(path)


# --- metrics on hand-made numbers

def test_pck_at_inside_and_outside_the_threshold():
    target = np.zeros((3, 2))
    predicted = np.array([[6.0, 8.0], [3.0, 4.0], [6.0, 8.1]])  # 10 px (exactly 0.1), 5 px, just over 10
    errors = normalised_errors(predicted, target, reference=100.0)
    np.testing.assert_allclose(errors[:2], [0.1, 0.05])
    assert pck(errors, 0.1) == pytest.approx(2 / 3)
    assert pck(errors, 0.05) == pytest.approx(1 / 3)
    assert np.isnan(pck(np.zeros(0), 0.1))


def test_keypoint_extent_uses_labelled_points_only():
    keypoints = np.array([[0, 0, 2], [30, 10, 1], [1000, 1000, 0], [10, 50, 2]], dtype=float)
    assert keypoint_extent(keypoints) == 50.0


def limb_skeleton() -> np.ndarray:
    """(12, 3) limb joints in metres, COCO 5-16 order (hips at positions 6 and 7)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 3)) * 0.3 + [0.0, 0.0, 4.0]


def test_mpjpe_is_mid_hip_aligned_and_pa_undoes_a_similarity():
    target = limb_skeleton()
    moved = target + [0.5, -0.2, 1.0]
    assert mpjpe_mm(moved, target) == pytest.approx((0.0, 0.0), abs=1e-6)
    off = moved.copy()
    off[0, 0] += 0.012  # a shoulder 12 mm away: 1 mm over 12 joints
    assert mpjpe_mm(off, target)[0] == pytest.approx(1.0)
    skew = torch.tensor([[0, -0.3, 0.2], [0.3, 0, -0.5], [-0.2, 0.5, 0]], dtype=torch.float64)
    rotation = torch.linalg.matrix_exp(skew).numpy()
    similar = 1.7 * target @ rotation.T + [0.1, 0.2, 0.3]
    assert mpjpe_mm(similar, target)[1] == pytest.approx(0.0, abs=1e-6)
    assert mpjpe_mm(similar, target)[0] > 50


def test_attention_peak_lands_on_the_right_image_pixel():
    crop = make_crop(np.array([200.0, 100.0]), 320.0, 160)  # 2 image px per crop px
    maps = np.zeros((2, 4, 8))
    maps[0, 1, 3] = 1.0   # cell u=3, v=1: centre at crop (69.5, 59.5)
    maps[1, 0, 0] = 1.0   # cell 0, 0: centre at crop (9.5, 19.5)
    peaks = attention_peaks(maps, crop)
    # crop x = 0.5 x + 80 - 100, crop y = 0.5 y + 80 - 50
    np.testing.assert_allclose(peaks, [[179.0, 59.0], [59.0, -21.0]])
    # The same convention as the app's maps on the image (whose interpolation weights are
    # rounded to 1/32, so a neighbour may tie with the peak).
    on_image = crop_map_to_image(maps[:1], crop, (200, 400))[0]
    assert on_image[59, 179] == pytest.approx(1.0) and on_image.max() == pytest.approx(1.0)


def test_greedy_matching_best_pair_first_and_square_crops():
    annotated = [np.array([0, 0, 100, 100.0]), np.array([90, 0, 190, 100.0])]
    predicted = [np.array([50, 0, 150, 100.0]), np.array([5, 0, 105, 100.0])]
    plain = match_boxes(predicted, annotated, to_region=lambda b: b)
    assert plain == {0: 1}  # (a0, p1) first; p0 then overlaps a1 by IoU 0.43 only
    # A standing person's tight box in a square scale box: IoU 0.4, yet the same crop.
    square, tall = [np.array([0, 0, 100, 100.0])], [np.array([30, 0, 70, 100.0])]
    assert match_boxes(tall, square, to_region=lambda b: b) == {}
    assert match_boxes(tall, square) == {0: 0}


def fake_prediction(joints2d: np.ndarray, crop) -> SimpleNamespace:
    return SimpleNamespace(joints2d=joints2d, joints3d=np.zeros((24, 3)), crop=crop,
                           part_attention=np.full((24, 4, 4), 1 / 16))


def test_unfound_people_count_as_wrong_only_in_pck_detector_all(tmp_path):
    limbs = {j: (100.0 + 10 * j, 50.0 + 20 * j) for j in range(5, 17)}
    path = write_annotations(tmp_path, {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": [{"image_id": 1, "bbox": [0, 0, 400, 400], "keypoints": coco_keypoints(limbs)}]})
    person = read_coco_keypoints(path)[0].people[0]
    perfect = np.zeros((24, 2))
    for coco, smpl in SMPL_OF_COCO_LIMB.items():
        perfect[smpl] = limbs[coco]
    crop = make_crop(np.array([200.0, 200.0]), 480.0, 160)
    good = fake_prediction(perfect, crop)
    found = score_person("coco", person, good, detected=good)
    missed = score_person("coco", person, good, detected=None)
    summary = summarize([found, missed])
    assert summary["detection"] == {"people": 2, "found": 1, "found_plain_iou": 0}
    assert summary["pck_detector"] == {"pck@0.05": 1.0, "pck@0.1": 1.0, "pck@0.2": 1.0, "people": 1, "joints": 12}
    assert summary["pck_detector_all"]["pck@0.1"] == 0.5 and summary["pck_detector_all"]["joints"] == 24
    assert summary["pck_annotated_boxes"]["pck@0.05"] == 1.0
    assert summary["joints3d"]["mpjpe_mm"] is None and summary["joints3d"]["people"] == 0


def test_cli_reports_a_missing_file_in_one_line(tmp_path, capsys):
    assert evaluate_photos_cli(["--annotations", str(tmp_path / "nothing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nothing.json" in err and "Traceback" not in err


# --- a small run on the real photos with the bundled weights

def in_range(value, low, high):
    return value is not None and low <= value <= high


def test_evaluation_on_a_few_real_photos():
    annotations = REAL_PHOTOS / "annotations.json"
    if not annotations.is_file():
        pytest.skip(f"the annotated photos are not there: {annotations}")
    from pare_demo.predictor import Predictor

    dataset = read_coco_keypoints(annotations)
    first_of_each = {}
    for image in dataset:
        first_of_each.setdefault(image.source, image)
    subset = list(first_of_each.values())[:3]
    predictor = Predictor(flip_test=False)
    seen = []
    results = evaluate_photos(predictor, subset, progress=lambda images: [seen.append(i) or i for i in images])

    assert len(seen) == len(subset)
    json.dumps(results, allow_nan=False)
    assert results["config"]["match_iou"] == 0.5 and results["config"]["checkpoint"] == predictor.description
    assert set(results["by_source"]) == {image.source for image in subset}
    people = sum(len(image.people) for image in subset)
    overall = results["overall"]
    assert overall["detection"]["people"] == people
    assert 0 <= overall["detection"]["found"] <= people
    for key in ("pck_detector_all", "pck_annotated_boxes"):
        assert overall[key]["people"] == people and overall[key]["joints"] > 0
        assert all(in_range(overall[key][f"pck@{t}"], 0, 1) for t in (0.05, 0.1, 0.2))
        assert overall[key]["pck@0.05"] <= overall[key]["pck@0.1"] <= overall[key]["pck@0.2"]
    assert in_range(overall["attention_peaks"]["pck@0.15"], 0, 1)
    if "h36m" in results["by_source"]:
        joints3d = results["by_source"]["h36m"]["joints3d"]
        assert joints3d["people"] >= 1
        assert in_range(joints3d["pa_mpjpe_mm"], 1, 2000) and joints3d["pa_mpjpe_mm"] <= joints3d["mpjpe_mm"] + 1e-6
    assert "overall" in results_table(results).splitlines()[0]

    # Per person: one row each, in the file's order, adding up to the overall figures.
    rows = results["people"]
    assert [(r["image"], r["person"]) for r in rows] == [
        (image.path.name, i) for image in subset for i in range(len(image.people))]
    joints = np.array([r["joints"] for r in rows])
    within = np.array([r["pck_annotated_boxes"]["pck@0.1"] for r in rows]) * joints
    assert joints.sum() == overall["pck_annotated_boxes"]["joints"]
    assert within.sum() / joints.sum() == pytest.approx(overall["pck_annotated_boxes"]["pck@0.1"])
    assert sum(r["found"] for r in rows) == overall["detection"]["found"]
    assert all((r["pck_detector"] is None) == (not r["found"]) for r in rows)
    with_3d = [r["pa_mpjpe_mm"] for r in rows if r["pa_mpjpe_mm"] is not None]
    if with_3d:
        assert np.mean(with_3d) == pytest.approx(results["overall"]["joints3d"]["pa_mpjpe_mm"])
    table = people_table(rows).splitlines()
    assert len(table) == len(rows) + 1 and table[1].startswith(rows[0]["image"])
