"""COCO keypoint annotations (``person_keypoints_*.json``): images and the people in them.

Per image: ``file_name`` (relative to the json's folder), ``width``, ``height`` and an
optional ``source`` ("coco", "mpii", "h36m", ...; "coco" when absent). Per person: the 17
COCO keypoints as (x, y, v) with v = 0 for "not labelled", the ``bbox`` [x, y, w, h]
(kept as x0, y0, x1, y1) and an optional ``keypoints_3d``: the same 17 joints in metres in
the camera frame (x right, y down, z forward), null where absent. Crowd annotations and
people without a labelled keypoint are skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pare_demo.body.joint_names import COCO_KEYPOINT_NAMES

NUM_KEYPOINTS = len(COCO_KEYPOINT_NAMES)
DEFAULT_SOURCE = "coco"


@dataclass
class PersonAnnotation:
    id: int
    bbox: np.ndarray                  # (4,) x0, y0, x1, y1 in pixels
    keypoints: np.ndarray             # (17, 3) x, y, v in COCO order; v = 0: not labelled
    keypoints_3d: np.ndarray | None = None  # (17, 3) metres, camera frame, y down; NaN rows where absent

    @property
    def labelled(self) -> np.ndarray:
        """(17,) bool: keypoints with a position."""
        return self.keypoints[:, 2] > 0


@dataclass
class AnnotatedImage:
    id: int
    path: Path
    width: int
    height: int
    source: str = DEFAULT_SOURCE
    people: list[PersonAnnotation] = field(default_factory=list)


def read_coco_keypoints(path: str | Path) -> list[AnnotatedImage]:
    """The images of a COCO keypoint file, in the file's order, each with its people."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO keypoint annotations not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON file ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: expected a JSON object with 'images' and 'annotations' lists")

    images: dict[int, AnnotatedImage] = {}
    for i, entry in enumerate(data["images"]):
        image = _parse_image(entry, path.parent, f"{path}: images[{i}]")
        if image.id in images:
            raise ValueError(f"{path}: images[{i}]: image id {image.id} appears twice")
        images[image.id] = image
    for i, entry in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        image_id = entry.get("image_id")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id!r} is not among the images")
        if entry.get("iscrowd", 0):
            continue
        person = _parse_person(entry, where)
        if person.labelled.any():
            images[image_id].people.append(person)
    return list(images.values())


def _parse_image(entry, folder: Path, where: str) -> AnnotatedImage:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object")
    missing = [k for k in ("id", "file_name", "width", "height") if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    try:
        width, height = int(entry["width"]), int(entry["height"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: width and height must be numbers") from None
    return AnnotatedImage(id=entry["id"], path=folder / str(entry["file_name"]), width=width, height=height,
                          source=str(entry.get("source") or DEFAULT_SOURCE))


def _parse_person(entry: dict, where: str) -> PersonAnnotation:
    keypoints = _numbers(entry.get("keypoints"), NUM_KEYPOINTS * 3, f"{where}: keypoints")
    x, y, w, h = _numbers(entry.get("bbox"), 4, f"{where}: bbox")
    return PersonAnnotation(id=entry.get("id", -1), bbox=np.array([x, y, x + w, y + h]),
                            keypoints=keypoints.reshape(NUM_KEYPOINTS, 3),
                            keypoints_3d=_keypoints_3d(entry.get("keypoints_3d"), where))


def _numbers(value, count: int, where: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != count:
        raise ValueError(f"{where}: expected a list of {count} numbers")
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a list of {count} numbers") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: holds a value that is not a finite number")
    return array


def _keypoints_3d(value, where: str) -> np.ndarray | None:
    if value is None:
        return None
    where = f"{where}: keypoints_3d"
    if not isinstance(value, list) or len(value) != NUM_KEYPOINTS:
        raise ValueError(f"{where}: expected a list of {NUM_KEYPOINTS} entries, each [x, y, z] or null")
    out = np.full((NUM_KEYPOINTS, 3), np.nan)
    for j, point in enumerate(value):
        if point is not None:
            out[j] = _numbers(point, 3, f"{where}[{j}]")
    return None if np.isnan(out).all() else out
