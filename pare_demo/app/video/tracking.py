"""People followed across a clip's frames: stable integer ids from each frame's boxes.

    tracker = Tracker()
    ids = tracker.update(boxes)    # one frame's (N, 4) boxes -> their N track ids
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from pare_demo.boxes import box_iou


@dataclass
class _Track:
    id: int
    box: np.ndarray
    velocity: np.ndarray   # box change per frame
    missed: int = 0        # frames since last seen

    def expected_box(self) -> np.ndarray:
        return self.box + self.velocity * (self.missed + 1)


class Tracker:
    """Stable integer ids for people across frames. Each frame's boxes are matched
    one-to-one (Hungarian method) to where the live tracks are expected to be (last box
    moved on at its velocity) by IoU; a box left unmatched starts a new track, and a track
    unseen for more than max_missed frames ends. Ids count up from 0 and are never reused."""

    def __init__(self, min_iou: float = 0.2, max_missed: int = 5):
        self.min_iou, self.max_missed = min_iou, max_missed
        self.tracks: list[_Track] = []
        self.next_id = 0

    def update(self, boxes) -> list[int]:
        """One frame's (N, 4) boxes -> their N track ids."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = [-1] * len(boxes)
        matched: set[int] = set()
        if self.tracks and len(boxes):
            iou = box_iou(boxes, np.stack([t.expected_box() for t in self.tracks]))
            for i, j in zip(*linear_sum_assignment(-iou)):
                if iou[i, j] >= self.min_iou:
                    track = self.tracks[j]
                    track.velocity = (boxes[i] - track.box) / (track.missed + 1)
                    track.box, track.missed = boxes[i], 0
                    ids[i] = track.id
                    matched.add(j)
        for j, track in enumerate(self.tracks):
            if j not in matched:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for i, box in enumerate(boxes):
            if ids[i] < 0:
                self.tracks.append(_Track(self.next_id, box, np.zeros(4)))
                ids[i] = self.next_id
                self.next_id += 1
        return ids
