"""One image in, one ImageResult out (the camera, timings and one Prediction per person):
detect -> crop -> PARE -> body model -> camera.

    predictor = Predictor()                      # bundled weights, open body model, CUDA if present
    result = predictor.predict(image_rgb_uint8)  # ImageResult
    result.people                                # list[Prediction]
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pare_demo import paths
from pare_demo.body import load_body_model
from pare_demo.checkpoints import load_checkpoint
from pare_demo.crop import Crop, crop_image, crop_map_to_image, crop_to_image_points, make_crop, square_around
from pare_demo.detect import Detection, PersonDetector
from pare_demo.fitting import VIDEO_FIT, FitSettings, fit_to_attention
from pare_demo.flip_test import average_with_mirror
from pare_demo.geometry import (CROP_FOCAL_LENGTH, crop_to_full_camera, perspective_projection,
                                rotmat_to_axis_angle)
from pare_demo.images import downscale_huge, to_rgb_uint8
from pare_demo.models import PareOutput, model_from_checkpoint
from pare_demo.optimize import optimize_for_inference, torch_threads
from pare_demo.timing import StageTimer


@dataclass
class Prediction:
    """One person. 3D quantities are in metres in the body's frame (add cam_translation for
    camera coordinates); 2D ones are in full-image pixels."""
    bbox: np.ndarray              # (4,) x0, y0, x1, y1
    detection_score: float
    detection_source: str
    pose: np.ndarray              # (24, 3, 3)
    pose_axis_angle: np.ndarray   # (72,)
    betas: np.ndarray             # (10,)
    cam_crop: np.ndarray          # (3,) weak perspective s, tx, ty
    cam_translation: np.ndarray   # (3,) full-image camera translation (ImageResult's camera)
    vertices: np.ndarray          # (V, 3)
    joints3d: np.ndarray          # (24, 3) SMPL joints
    eval_joints3d: np.ndarray     # (14, 3) LSP-14 joints for 3DPW metrics
    keypoints3d: np.ndarray       # (21, 3) nose, eyes, ears, feet, fingertips (smplx order)
    joints2d: np.ndarray          # (24, 2)
    part_logits: np.ndarray       # (25, h, w) over the crop
    part_attention: np.ndarray    # (24, h, w) over the crop, each map sums to 1
    crop: Crop                    # in full-image coordinates

    def part_attention_on_image(self, image_size: tuple[int, int], max_side: int | None = None) -> np.ndarray:
        """(24, H, W) attention maps warped onto the full image of image_size (width,
        height; ImageResult.image_size), optionally scaled so the longer side is max_side,
        normalised so each map's peak is 1."""
        w, h = image_size
        s = 1.0 if max_side is None else min(1.0, max_side / max(w, h))
        maps = crop_map_to_image(self.part_attention, self.crop.scaled(s),
                                 (max(1, round(h * s)), max(1, round(w * s))))
        return maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)


@dataclass
class ImageResult:
    """One image: its full-image camera, shared by everyone in it (so several people render
    in one scene), the time each stage took and one Prediction per person."""
    image_size: tuple[int, int]   # (width, height)
    focal_length: float           # full-image camera, pixels
    principal_point: np.ndarray   # (2,) image centre
    timings: dict[str, float]     # ms per stage, for the whole image
    # True when the detector found nobody and the whole image stood in: `people` then holds
    # that one stand-in (detection_source "whole-image"), so there is still a body to show.
    nobody_found: bool
    people: list[Prediction] = field(default_factory=list)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


BACKENDS = ("torch", "optimized", "onnx")


def default_backend(device: torch.device) -> str:
    """The fastest measured path (pare_demo.benchmark): ONNX Runtime on a CPU, the
    optimised PyTorch network (fp16 autocast) on CUDA or without onnxruntime."""
    if device.type == "cpu":
        try:
            import onnxruntime  # noqa: F401
            return "onnx"
        except ImportError:
            pass
    return "optimized"


class Predictor:
    def __init__(self, checkpoint: str | Path | None = None, body_model: str | None = None,
                 device: str | torch.device = "auto", backend: str = "auto",
                 detector: PersonDetector | None = None, flip_test: bool = True, fit: bool = True,
                 refine: bool = True):
        """checkpoint=None: the bundled weights. body_model=None: the one the checkpoint was
        trained with ("open" or "smpl"). backend: "torch" (eager fp32, the reference),
        "optimized" (pare_demo.optimize; fp16 autocast on CUDA), "onnx" (ONNX Runtime) or
        "auto" (the fastest here, see default_backend). flip_test: average each crop's
        prediction with its mirror image's (pare_demo.flip_test; twice the network time).
        fit: move each body's projected joints onto its part-attention keypoints
        (pare_demo.fitting: camera and small joint rotations; about 55 ms a person here).
        refine: with a backbone pretrained on MediaPipe's crops (blazepose), crop each
        person where BlazePose's landmark network puts the body
        (pare_demo.blazepose.pose_landmarks); not for webcam frames (predict's video_frame)."""
        self.device = pick_device(device)
        self.checkpoint_path = Path(checkpoint) if checkpoint else paths.BUNDLED_CHECKPOINT
        ckpt = load_checkpoint(self.checkpoint_path)
        self.model = model_from_checkpoint(ckpt).to(self.device).eval()  # eager, always kept
        self.config = self.model.config
        self.meta = ckpt["meta"]
        self.body_model = load_body_model(body_model or self.config.body_model, device=self.device)
        # Still photos: BlazePose also looks in tiles, for small people, and checks each
        # detection with its landmark network (pare_demo.detect).
        self.detector = detector or PersonDetector(blazepose_tiles=True, blazepose_verify=True)
        self.flip_test = flip_test
        self.fit = fit
        self.refine = refine
        self.backend = default_backend(self.device) if backend == "auto" else backend
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)} or 'auto', not {backend!r}")
        self._network = self.model
        # PyTorch threads while predicting; None: PyTorch's default (see pare_demo.optimize).
        self.torch_threads = None
        if self.backend == "onnx":
            from pare_demo.export_onnx import OnnxNetwork

            self._network = OnnxNetwork.for_checkpoint(self.model, self.checkpoint_path)
            self.torch_threads = 1 if self.device.type == "cpu" else None
        elif self.backend == "optimized":
            self._network = optimize_for_inference(self.model, self.device)
        mean = torch.tensor(self.config.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std, device=self.device).view(1, 3, 1, 1)
        self._mean, self._std = mean, std

    @property
    def can_refine(self) -> bool:
        """Whether the backbone takes refined crops (BlazePose's trunk, pretrained on them)."""
        return self.model.backbone.mediapipe_crops and paths.BLAZEPOSE_LANDMARKS.exists()

    @cached_property
    def landmark_network(self):
        """BlazePose's landmark network for refined crops: the detector's own when it has one
        (any callable may stand in for the detector)."""
        from pare_demo.blazepose.pose_landmarks import PoseLandmarkNetwork

        backend = getattr(self.detector, "backend", None)
        return getattr(backend, "landmark_network", None) or PoseLandmarkNetwork()

    @property
    def description(self) -> str:
        return (f"{self.config.backbone} PARE from {self.checkpoint_path.name}, body model "
                f"{self.body_model.model_name}, {self.device.type.upper()}, {self.backend}, "
                f"flip test {'on' if self.flip_test else 'off'}, fit to attention {'on' if self.fit else 'off'}, "
                f"crops refined {'on' if self.refine and self.can_refine else 'off'}, "
                f"detector {self.detector.name}")

    def normalise(self, crops: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 crops -> normalised (B, 3, S, S) float tensor."""
        x = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        return (x - self._mean) / self._std

    def run_network(self, images: torch.Tensor, flip_test: bool | None = None,
                    fit: bool | None = None) -> PareOutput:
        """Normalised crops -> the network's output in float32, without features.
        flip_test, fit: None follows self.flip_test, self.fit."""
        if not (self.flip_test if flip_test is None else flip_test):
            net = self._run_once(images)
        else:
            both = self._run_once(torch.cat((images, images.flip(-1))))  # one batch: faster than two
            n = len(images)
            net = average_with_mirror(both.map(lambda t: t[:n]), both.map(lambda t: t[n:]))
        if self.fit if fit is None else fit:
            net = self._fit(net)
        return net

    @torch.inference_mode()
    def run_crops(self, crops: np.ndarray) -> tuple[PareOutput, Any]:
        """(B, S, S, 3) uint8 crops -> run_network's output and the bodies it poses
        (smplx's output: vertices, joints)."""
        net = self.run_network(self.normalise(crops))
        return net, self.body_model.posed(net.pose, net.betas)

    def _fit(self, net: PareOutput, settings: FitSettings = FitSettings()) -> PareOutput:
        """`net` with its pose and camera replaced by their fit to its attention."""
        pose, cam = fit_to_attention(self.body_model, net.pose, net.betas, net.cam, net.part_attention, settings)
        return replace(net, pose=pose, cam=cam)

    def _run_once(self, images: torch.Tensor) -> PareOutput:
        if self.backend == "onnx":
            return self._network(images)
        with torch.inference_mode(), self._autocast():
            out = self._network(images)
        return out.map(torch.Tensor.float)

    @contextmanager
    def _autocast(self):
        if self.device.type == "cuda" and self.backend == "optimized":
            with torch.autocast("cuda", dtype=torch.float16):
                yield
        else:
            yield

    def predict(self, image, boxes=None, video_frame: bool = False, refine: bool | None = None) -> ImageResult:
        """All people in an RGB image (any dtype/channels; see pare_demo.images).
        boxes: optional (N, 4) x0, y0, x1, y1 in pixels, used instead of the detector.
        video_frame: one of many frames to keep up with: the detector's single whole-image
        look and the shorter fit (pare_demo.fitting.VIDEO_FIT), never refined crops.
        refine: None follows self.refine (False: crop exactly around the boxes, as the 3DPW
        evaluation does)."""
        with torch_threads(self.torch_threads):
            return self._predict(image, boxes, video_frame, self.refine if refine is None else refine)

    def _predict(self, image, boxes, video_frame: bool, refine: bool) -> ImageResult:
        timer = StageTimer()
        lap = timer.lap

        original = to_rgb_uint8(image)
        height, width = original.shape[:2]
        work, scale = downscale_huge(original)
        lap("decode")

        scaled_boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale
        detections: list[Detection] = self.detector(work, scaled_boxes, fast=video_frame)
        lap("detect")

        size = self.config.input_size
        refine = refine and not video_frame and self.can_refine
        crops_full = []
        for det in detections:
            if refine:  # the detector's look when it had one, else one here
                region = det.region or self.landmark_network.look(work, det.box).region
                center, side = region.center, region.size
            else:
                center, side = square_around(det.box)
            crops_full.append(make_crop(center / scale, side / scale, size))
        if refine:
            lap("refine")  # the looks here: people the detector looked at cost nothing more
        batch = self.normalise(np.stack([crop_image(work, c.scaled(scale)) for c in crops_full]))
        lap("crop")

        net = self.run_network(batch, fit=False)
        lap("network")
        if self.fit:  # after the network's lap, so the timings show it apart
            net = self._fit(net, VIDEO_FIT if video_frame else FitSettings())
            lap("fit")

        with torch.inference_mode():
            pose = net.pose
            body = self.body_model.posed(pose, net.betas)
            eval_joints = self.body_model.eval_joints(body.vertices)
        lap("body_model")

        n = len(detections)
        centers = torch.tensor(np.stack([c.center for c in crops_full]), dtype=torch.float32, device=self.device)
        sides = torch.tensor([c.size for c in crops_full], dtype=torch.float32, device=self.device)
        image_size = torch.tensor([[width, height]], dtype=torch.float32, device=self.device).expand(n, 2)
        # One camera for the whole image, so several people render in one scene; its long
        # focal length keeps the crop camera's near-orthographic view (5000 px at 224 px).
        focal = CROP_FOCAL_LENGTH * max(width, height) / size
        translation = crop_to_full_camera(net.cam, centers, sides, image_size, focal)
        principal = torch.tensor([width / 2, height / 2], device=self.device)
        joints = body.joints[:, :24]
        joints2d = perspective_projection(joints, translation, focal, principal)
        lap("camera")

        to_np = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
        axis_angle = to_np(rotmat_to_axis_angle(pose).reshape(n, 72))
        people = []
        for i, det in enumerate(detections):
            people.append(Prediction(
                bbox=det.box / scale, detection_score=det.score, detection_source=det.source,
                pose=to_np(pose[i]), pose_axis_angle=axis_angle[i], betas=to_np(net.betas[i]),
                cam_crop=to_np(net.cam[i]), cam_translation=to_np(translation[i]),
                vertices=to_np(body.vertices[i]), joints3d=to_np(joints[i]),
                eval_joints3d=to_np(eval_joints[i]), keypoints3d=to_np(body.joints[i, 24:]),
                joints2d=to_np(joints2d[i]), part_logits=to_np(net.part_logits[i]),
                part_attention=to_np(net.part_attention[i]), crop=crops_full[i]))
        return ImageResult(image_size=(width, height), focal_length=float(focal),
                           principal_point=np.array([width / 2, height / 2]), timings=timer.ms,
                           nobody_found=all(d.source == "whole-image" for d in detections), people=people)

    def faces(self) -> np.ndarray:
        return np.asarray(self.body_model.faces, dtype=np.int64)
