"""Person boxes, offline.

Default: BlazePose's detector (pare_demo.blazepose.detector: MediaPipe's pose detection
network, converted weights shipped in assets/blazepose/), which finds each person's mid-hip
and body size and gives the square around the body. Without that weights file: OpenCV only,
faces (the Haar frontal-face cascade that opencv-python ships) giving a body box each,
extrapolated with adult proportions, and the HOG pedestrian detector adding full bodies
whose faces are not visible. When a torchvision detector's weights are already in the
torch cache, that detector is used instead of either. With no person found, the whole
image is one person. A user-given box always wins.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pare_demo import paths
from pare_demo.boxes import box_overlap
from pare_demo.crop import Crop

# Body box from a face box of side f: adult proportions (about 7.5 heads tall, 4 wide).
FACE_TO_BODY = {"width": 4.0, "above": 0.5, "below": 7.0}
HOG_MIN_WEIGHT = 1.0       # HOG's SVM margin; weaker hits are mostly background
MAX_DETECT_SIDE = 800      # images are scaled down to this before detection
# torchvision detectors (builder names, most accurate first); their cached weights are
# named <builder>_coco-<hash>.pth.
TORCHVISION_DETECTORS = ("fasterrcnn_resnet50_fpn_v2", "fasterrcnn_resnet50_fpn",
                         "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn")


@dataclass(frozen=True)
class Detection:
    box: np.ndarray   # (4,) x0, y0, x1, y1 in pixels
    score: float
    source: str       # "blazepose", "face", "hog", "torchvision", "whole-image" or "user"
    # BlazePose's 4 keypoints (x, y pixels): mid-hip, body extent, mid-shoulder, upper-body
    # extent (see pare_demo.blazepose.detector); None from other sources.
    keypoints: np.ndarray | None = None
    # Where BlazePose's landmark network, looking at this detection, puts the body: the crop
    # (pare_demo.crop.Crop, 256 px) of MediaPipe's next look (the predictor's refined crop);
    # None where it did not look.
    region: Crop | None = None


def whole_image(image: np.ndarray) -> Detection:
    h, w = image.shape[:2]
    return Detection(np.array([0.0, 0.0, w, h]), 0.0, "whole-image")


def suppress_overlaps(detections: list[Detection], threshold: float = 0.6) -> list[Detection]:
    """Greedy suppression, best score first, of boxes mostly inside a kept one
    (a HOG hit on a face-found person's torso, say)."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if all(box_overlap(det.box, k.box)[0, 0] < threshold for k in kept):
            kept.append(det)
    return kept


class OpenCVPersonDetector:
    name = "opencv (faces + HOG)"

    def __init__(self):
        cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.faces = cv2.CascadeClassifier(str(cascade))
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        scale = min(1.0, MAX_DETECT_SIDE / max(h, w))
        small = cv2.resize(image, (round(w * scale), round(h * scale))) if scale < 1 else image
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        found = []
        min_face = max(20, round(min(gray.shape) * 0.04))
        for fx, fy, fw, fh in self.faces.detectMultiScale(gray, 1.1, 5, minSize=(min_face, min_face)):
            cx = fx + fw / 2
            box = [cx - FACE_TO_BODY["width"] * fw / 2, fy - FACE_TO_BODY["above"] * fh,
                   cx + FACE_TO_BODY["width"] * fw / 2, fy + fh + FACE_TO_BODY["below"] * fh]
            found.append(Detection(self._to_image(box, scale, w, h), 2.0 + fw / gray.shape[1], "face"))
        if min(gray.shape) >= 128:
            rects, weights = self.hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
            for (x, y, bw, bh), weight in zip(rects, np.ravel(weights)):
                if weight >= HOG_MIN_WEIGHT:
                    found.append(Detection(self._to_image([x, y, x + bw, y + bh], scale, w, h), float(weight), "hog"))
        return suppress_overlaps(found)

    @staticmethod
    def _to_image(box, scale, w, h) -> np.ndarray:
        box = np.asarray(box, dtype=np.float64) / scale
        return np.clip(box, 0, [w, h, w, h])


class TorchvisionPersonDetector:
    """A torchvision detector built without downloading, from weights found in the torch cache."""

    def __init__(self, weights_file: Path, builder: str, min_score: float = 0.6):
        import torchvision

        self.name = f"torchvision {builder}"
        self.model = getattr(torchvision.models.detection, builder)(weights=None, weights_backbone=None)
        self.model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        self.model.eval()
        self.min_score = min_score

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> list[Detection]:
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
        out = self.model([tensor])[0]
        keep = (out["labels"] == 1) & (out["scores"] >= self.min_score)  # COCO label 1 = person
        return [Detection(b.numpy().astype(np.float64), float(s), "torchvision")
                for b, s in zip(out["boxes"][keep], out["scores"][keep])]


def cached_torchvision_weights() -> tuple[Path, str] | None:
    """(weights file, builder) of a torchvision detector already in the torch hub cache."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    if not folder.is_dir():
        return None
    for builder in TORCHVISION_DETECTORS:
        for path in sorted(folder.glob(f"{builder}_coco*.pth")):
            return path, builder
    return None


class PersonDetector:
    """The best detector available offline; call it on an RGB uint8 image.

    In order: a torchvision detector whose weights are in the torch cache (if
    prefer_torchvision), BlazePose's (if use_blazepose and its weights file is there;
    blazepose_tiles: also look in overlapping windows, for small people, about 10 times
    slower; blazepose_verify: check each detection with the landmark network, which also
    gives Detection.region), OpenCV's faces + HOG."""

    def __init__(self, prefer_torchvision: bool = True, use_blazepose: bool = True,
                 blazepose_tiles: bool = False, blazepose_verify: bool = False):
        self.backend = None
        found = cached_torchvision_weights() if prefer_torchvision else None
        if found is not None:
            try:
                self.backend = TorchvisionPersonDetector(*found)
            except Exception:  # a damaged cache file: fall back
                self.backend = None
        if self.backend is None and use_blazepose and paths.BLAZEPOSE_DETECTOR.exists():
            from pare_demo.blazepose.detector import BlazePoseDetector

            try:
                self.backend = BlazePoseDetector(tiles=blazepose_tiles, verify=blazepose_verify)
            except Exception:  # a damaged weights file: fall back to OpenCV
                self.backend = None
        if self.backend is None:
            self.backend = OpenCVPersonDetector()

    @property
    def name(self) -> str:
        return self.backend.name

    def __call__(self, image: np.ndarray, boxes=None, fast: bool = False) -> list[Detection]:
        """fast: one look at the whole image (BlazePose without tiles or verification), for
        video frames."""
        if boxes is not None and len(boxes):
            return [Detection(np.asarray(b, dtype=np.float64)[:4], 1.0, "user") for b in boxes]
        found = self.backend(image, fast=True) if fast and hasattr(self.backend, "tiles") else self.backend(image)
        return found if found else [whole_image(image)]
