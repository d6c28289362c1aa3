"""Score the real-photo dev set after every validation, so checkpoints can be chosen by how
they do on real people and not on renders alone.

The photos are only looked at, never trained on: the callback copies the current weights
into a Predictor and runs pare_demo.photo_evaluation on them (annotated boxes and the
detector, flip test off for speed), then logs
    val/photo_pck        PCK@0.1 of the projected joints with the annotated boxes
    val/photo_pck_detector, val/photo_attention_pck, val/photo_pa_mpjpe
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L
import torch

from pare_demo.checkpoints import save_checkpoint
from pare_demo.data.coco_keypoints import read_coco_keypoints
from pare_demo.photo_evaluation import evaluate_photos


class PhotoValidation(L.Callback):
    def __init__(self, annotations: str | Path, model_config: dict):
        self.dataset = read_coco_keypoints(Path(annotations).expanduser())
        self.model_config = model_config
        self.predictor = None

    def _predictor(self, module):
        if self.predictor is None:
            from pare_demo.predictor import Predictor

            with tempfile.TemporaryDirectory() as tmp:
                path = save_checkpoint(Path(tmp) / "current.pt", self.model_config,
                                       module.model.state_dict(), {"source": "training"})
                self.predictor = Predictor(path, device=module.device, backend="torch", flip_test=False)
        return self.predictor

    def on_validation_epoch_end(self, trainer, module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        predictor = self._predictor(module)
        predictor.model.load_state_dict(module.model.state_dict())
        with torch.inference_mode():
            overall = evaluate_photos(predictor, self.dataset)["overall"]
        figures = {
            "val/photo_pck": overall["pck_annotated_boxes"]["pck@0.1"],
            "val/photo_pck_detector": overall["pck_detector_all"]["pck@0.1"],
            "val/photo_attention_pck": overall["attention_peaks"]["pck@0.15"],
            "val/photo_pa_mpjpe": overall["joints3d"]["pa_mpjpe_mm"],
        }
        module.log_dict({k: float(v) for k, v in figures.items() if v is not None}, rank_zero_only=True)
