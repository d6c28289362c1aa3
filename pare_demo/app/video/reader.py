"""A clip's frames, decoded and fitted for the video pipeline.

    video = VideoReader("clip.mp4", max_frames=120)
    video.fps, video.size, video.reported_frames
    for frame in video: ...        # RGB uint8; each iteration decodes the file afresh
    video.truncated                # after iterating: frames were left out
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from pare_demo.timing import StageTimer

MAX_FRAMES = 300        # frames processed per clip; the rest is left out, and the message says so
MAX_SIDE = 1280         # longer frames are scaled down to this
MIN_SIDE = 16           # smaller frames are refused
DEFAULT_FPS = 25.0      # when the container does not say


class VideoError(ValueError):
    """The input is not a clip pare-demo can use; the message says why."""


class VideoReader:
    """The frames of a clip as RGB uint8, scaled so the longer side is at most max_side,
    cropped to even sizes (VP8 would drop an odd last row or column), at most max_frames.
    Each iteration decodes the file afresh, so a clip can be read twice."""

    def __init__(self, path, max_frames: int = MAX_FRAMES, max_side: int = MAX_SIDE):
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, not {max_frames}")
        if path is None or str(path) == "":
            raise VideoError("No video was given.")
        self.path = Path(path)
        self.max_frames, self.max_side = max_frames, max_side
        if not self.path.is_file():
            raise VideoError(f"{self.path.name} does not exist.")
        capture = self._open()
        try:
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = fps if math.isfinite(fps) and 0 < fps <= 240 else DEFAULT_FPS
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)  # from the container: may be an estimate
            self.reported_frames = int(count) if math.isfinite(count) and count > 0 else 0
            ok, first = capture.read()
        finally:
            capture.release()
        if not ok or first is None:
            raise VideoError(f"{self.path.name} is empty: no frame in it could be decoded.")
        if min(first.shape[:2]) < MIN_SIDE:
            raise VideoError(f"{self.path.name} is too small ({first.shape[1]}x{first.shape[0]} pixels).")
        height, width = self._fit(first).shape[:2]
        self.size = (width, height)
        self.truncated = False       # set by iterating: True when frames were left out
        self.timer = StageTimer()  # decoding, over every pass

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise VideoError(f"{self.path.name} is not a video that can be read "
                             "(try MP4, WebM, MOV or AVI).")
        return capture

    def _fit(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s < 1:
            bgr = cv2.resize(bgr, (max(2, round(w * s)), max(2, round(h * s))), interpolation=cv2.INTER_AREA)
            h, w = bgr.shape[:2]
        return cv2.cvtColor(bgr[:h - h % 2, :w - w % 2], cv2.COLOR_BGR2RGB)

    def __iter__(self):
        capture = self._open()
        try:
            for _ in range(self.max_frames):
                with self.timer.stage("decode"):
                    ok, bgr = capture.read()
                    frame = self._fit(bgr) if ok else None
                if frame is None:
                    return
                yield frame
            self.truncated = capture.grab()
        finally:
            capture.release()
