"""The webcam path: one frame in, the annotated frame and a status line out, fast enough
to stream.

    session = LiveSession(predictor, renderer)        # both shared with the rest of the app
    image, info = session.process(frame, draw=("mesh", "keypoints"), part="left_wrist")

Person detection is the costliest stage (~150 ms on 640x480 with OpenCV), so it runs only
every `detect_every` frames, on the first frame, when the frame size changes or when a
person is lost; in between, each person's detected box follows the motion of their 2D
joints in the previous frame's prediction. Only what `draw` asks for is drawn.
"""
from __future__ import annotations


import numpy as np

from pare_demo import visualize
from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.crop import crop_map_to_image
from pare_demo.images import to_rgb_uint8
from pare_demo.render import people_meshes
from pare_demo.timing import StageTimer

DRAWABLE = ("mesh", "keypoints", "heatmap")
MIN_BOX_SIDE = 8.0   # pixels; a smaller box counts as lost


def follow(box: np.ndarray, joints_then: np.ndarray, joints_now: np.ndarray,
           image_size: tuple[int, int]) -> np.ndarray | None:
    """The detector's box moved as far as the person's 2D joints moved since that
    detection; None when the person is lost (joints not finite, their centre off the
    frame). The joints, not the box: BlazePose's box of someone cut by the frame's edge
    reaches far past it, its centre too.
    Relative motion, not a box around the joints: a weak network that draws the body
    smaller than the person would otherwise shrink the box frame after frame."""
    if not (np.isfinite(joints_then).all() and np.isfinite(joints_now).all()):
        return None
    moved = np.tile(joints_now.mean(0) - joints_then.mean(0), 2)
    new = np.asarray(box, dtype=np.float64) + moved
    (cx, cy), (w, h) = joints_now.mean(0), image_size
    if not (0 <= cx <= w and 0 <= cy <= h) or min(new[2:] - new[:2]) < MIN_BOX_SIDE:
        return None
    return new


def part_heatmap(image: np.ndarray, people, part: str, out: np.ndarray | None = None) -> np.ndarray:
    """One part's attention map of everyone (each scaled to its peak) over the image. Only
    that map is warped, and only the area the crops cover is coloured. out: an (H, W)
    float32 scratch buffer to reuse."""
    h, w = image.shape[:2]
    joint = SMPL_JOINT_NAMES.index(part)
    heat = np.empty((h, w), np.float32) if out is None else out
    heat.fill(0)
    x0, y0, x1, y1 = w, h, 0, 0
    for p in people:
        warped = crop_map_to_image(p.part_attention[joint:joint + 1], p.crop, (h, w))[0]
        np.maximum(heat, warped / max(float(warped.max()), 1e-12), out=heat)
        (cx, cy), half = p.crop.center, p.crop.size / 2
        x0, y0 = min(x0, max(0, int(cx - half))), min(y0, max(0, int(cy - half)))
        x1, y1 = max(x1, min(w, int(cx + half) + 2)), max(y1, min(h, int(cy + half) + 2))
    if x1 <= x0 or y1 <= y0:  # every crop outside the image
        return image
    result = image.copy()
    result[y0:y1, x0:x1] = visualize.heatmap_overlay(image[y0:y1, x0:x1], heat[y0:y1, x0:x1])
    return result


class LiveSession:
    """State carried from one webcam frame to the next: tracked boxes and running timings."""

    def __init__(self, predictor, renderer, detect_every: int = 15, smoothing: float = 0.1):
        self.predictor = predictor
        self.renderer = renderer
        self.detect_every = detect_every
        self.smoothing = smoothing          # weight of the newest frame in the running averages
        self.faces = predictor.faces()
        self.frames = 0
        self.detector_runs = 0
        self.mean_ms: dict[str, float] = {}  # running average per stage, and "total"
        self._boxes: np.ndarray | None = None  # the next frame's boxes; None: detect
        self._anchor: list | None = None       # per person: (detected box, its 2D joints) then
        self._detected_at = 0                 # index of the frame last searched
        self._size: tuple[int, int] | None = None
        self._heat: np.ndarray | None = None   # (H, W) heatmap buffer, reused while the size holds

    @property
    def fps(self) -> float:
        return 1000.0 / self.mean_ms["total"] if self.mean_ms else 0.0

    def process(self, frame, draw=("mesh",), part: str = "left_wrist") -> tuple[np.ndarray, str]:
        """The frame (any RGB/gray/RGBA array) with the chosen layers drawn, same size, and
        a line with the running fps and per-stage ms."""
        timer = StageTimer()
        unknown = set(draw) - set(DRAWABLE)
        if unknown:
            raise ValueError(f"cannot draw {sorted(unknown)}; choose from {DRAWABLE}")
        if part not in SMPL_JOINT_NAMES:
            raise ValueError(f"unknown part {part!r}")
        frame = to_rgb_uint8(frame)
        size = (frame.shape[1], frame.shape[0])
        detect = (self._boxes is None or size != self._size
                  or self.frames - self._detected_at >= self.detect_every)
        result = self.predictor.predict(frame, None if detect else self._boxes, video_frame=True)
        people = result.people
        self._track(result, detected=detect, size=size)
        timer.lap("predict")  # the predictor's own stages are in its timings

        image = frame
        if "heatmap" in draw:
            with timer.stage("heatmap"):
                if self._heat is None or self._heat.shape != frame.shape[:2]:
                    self._heat = np.empty(frame.shape[:2], np.float32)
                image = part_heatmap(image, people, part, out=self._heat)
        if "mesh" in draw:
            with timer.stage("render"):
                image = self.renderer.overlay(image, people_meshes(people, self.faces), result.focal_length)
        if "keypoints" in draw:
            with timer.stage("keypoints"):
                for p in people:
                    image = visualize.draw_skeleton(image, p.joints2d)
        timings = {**result.timings, **{k: v for k, v in timer.ms.items() if k != "predict"},
                   "total": timer.total_ms()}
        self._average(timings)
        return image, self._info(len(people), detect)

    def _track(self, result, detected: bool, size: tuple[int, int]) -> None:
        """Boxes for the next frame, following each person of the predictor's ImageResult
        from the last detection; None (detect again) when anyone is lost."""
        people = result.people
        if detected:
            self.detector_runs += 1
            self._detected_at = self.frames
            # Nobody found (the whole frame stands in): nothing to follow, keep the frame.
            follows = not result.nobody_found
            self._anchor = [(p.bbox, p.joints2d if follows else None) for p in people]
        self.frames += 1
        self._size = size
        boxes = [box if then is None else follow(box, then, p.joints2d, size)
                 for (box, then), p in zip(self._anchor, people)]
        self._boxes = None if any(b is None for b in boxes) else np.stack(boxes)

    def _average(self, timings: dict[str, float]) -> None:
        a = self.smoothing
        self.mean_ms = {k: v for k, v in self.mean_ms.items() if k in timings}  # layers turned off
        for name, ms in timings.items():
            self.mean_ms[name] = ms if name not in self.mean_ms else (1 - a) * self.mean_ms[name] + a * ms

    def _info(self, people: int, detected: bool) -> str:
        stages = " · ".join(f"{k} {v:.0f}" for k, v in self.mean_ms.items() if k != "total")
        source = "detector" if detected else f"tracked (detector every {self.detect_every} frames)"
        return (f"{self.fps:.1f} fps · {people} person(s), boxes {source} · "
                f"ms: {stages} · total {self.mean_ms['total']:.0f}")
