"""The bundled weights still score what their checkpoint says (training.export stored the
figures when they were made, and the README quotes them): a change to the detector, the
crops, the network, the fit or the body model that moves them shows here."""
from pathlib import Path

import pytest

from pare_demo import paths
from pare_demo.checkpoints import load_checkpoint

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "real_photos"


@pytest.fixture(scope="module")
def meta():
    return load_checkpoint(paths.BUNDLED_CHECKPOINT)["meta"]


@pytest.mark.slow
def test_real_photo_figures(meta):
    """The whole dev set with the app's defaults; up to two joints may flip at a threshold
    between machines."""
    annotations = REAL_PHOTOS / "annotations.json"
    if not annotations.is_file():
        pytest.skip(f"the annotated photos are not there: {annotations}")
    from pare_demo.data.coco_keypoints import read_coco_keypoints
    from pare_demo.photo_evaluation import evaluate_photos
    from pare_demo.predictor import Predictor

    stored = meta["photos"]["overall"]
    overall = evaluate_photos(Predictor(), read_coco_keypoints(annotations))["overall"]
    assert overall["detection"] == stored["detection"]
    for key, threshold in (("pck_detector_all", "pck@0.1"), ("pck_annotated_boxes", "pck@0.1"),
                           ("attention_peaks", "pck@0.15")):
        assert overall[key]["joints"] == stored[key]["joints"]
        assert overall[key][threshold] == pytest.approx(stored[key][threshold], abs=2 / stored[key]["joints"]), key
    assert overall["joints3d"]["pa_mpjpe_mm"] == pytest.approx(stored["joints3d"]["pa_mpjpe_mm"], abs=1.0)


@pytest.mark.slow
def test_sample_set_figures(meta, tmp_path):
    """training.evaluate on the bundled sample set (assets/samples), as the app runs the
    weights (flip test and fit): within 0.5 mm of the stored figures."""
    import json

    from training.evaluate import main as evaluate

    stored = meta["sample_set"]
    out = tmp_path / "sample.json"
    assert evaluate(["--dataset-root", str(paths.SAMPLE_PW3D_DIR), "--split", "validation",
                     "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["num_frames"] == stored["num_frames"] and result["flip_test"] and result["fit"]
    for key in ("mpjpe", "pa_mpjpe", "pve"):
        assert result[key] == pytest.approx(stored[key], abs=0.5), key
