"""A clip in, the clip with every tracked person's mesh drawn over it out, plus the
per-frame results (.npz and .json, naming the body model the betas are for).

    result = process_video(predictor, renderer, "clip.mp4", "out/")
    result.video_path, result.npz_path, result.json_path, result.message

Two passes over the clip: predict and track every frame; smooth each track over time
(a centred window, so no lag); then decode the clip again to draw and encode.

The clip is written as VP8 in WebM: the OpenCV wheel's FFmpeg has no H.264 encoder, and
of what it can encode, VP8 and VP9 are what browsers play; VP8 encodes ~6x faster.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from pare_demo.app.video.reader import MAX_FRAMES, VideoError, VideoReader
from pare_demo.app.video.smoothing import Smoother
from pare_demo.app.video.tracking import Tracker
from pare_demo.colors import person_color, to_uint8
from pare_demo.geometry import perspective_projection, rotmat_to_axis_angle
from pare_demo.render import MeshToRender
from pare_demo.timing import StageTimer

FOURCC, SUFFIX = "VP80", ".webm"


@dataclass
class VideoResult:
    video_path: Path          # the overlay clip, VP8 in WebM
    npz_path: Path            # per person-frame arrays
    json_path: Path           # the same, as JSON
    frame_count: int          # frames processed
    frames_with_people: int
    track_count: int
    fps: float
    size: tuple[int, int]     # (width, height) of the processed frames
    truncated: bool           # the clip had more than max_frames frames
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage, all frames together
    message: str = ""


def process_video(predictor, renderer, path, out_dir, smoothing: bool = True,
                  max_frames: int = MAX_FRAMES, progress=None) -> VideoResult:
    """Meshes of every tracked person drawn over each frame of the clip at `path`, written
    to out_dir with the per-frame results. progress(done, total) is called after each
    frame of each pass: every frame counts twice (predicting, then drawing)."""
    timer = StageTimer()
    video = VideoReader(path, max_frames)
    rows, frame_count = _predict_and_track(predictor, video, timer, progress)
    if not rows:
        raise VideoError(f"No person found in any frame of {video.path.name} ({frame_count} frames). "
                         "Try a clip where people are clearly visible.")
    with timer.stage("smooth"):
        _smooth_tracks(rows, Smoother(enabled=smoothing))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{video.path.stem}_pare"
    video_path = out_dir / f"{stem}{SUFFIX}"
    _draw_and_encode(predictor, renderer, video, rows, video_path, timer,
                     progress and (lambda i: progress(frame_count + i, 2 * frame_count)))
    timer.add("decode", video.timer.ms.get("decode", 0.0))  # both passes
    with timer.stage("save"):
        npz_path, json_path = _save_rows(rows, video, smoothing, predictor.body_model.label,
                                         out_dir / f"{stem}_frames")
    timer.add("total", timer.total_ms())
    seconds = timer.ms["total"] / 1000

    width, height = video.size
    frames_with_people = len(np.unique(rows["frame"]))
    track_count = len(np.unique(rows["track_id"]))
    message = (f"{frame_count} frames ({width}x{height}, {video.fps:.3g} fps): "
               f"{track_count} {'person' if track_count == 1 else 'people'} tracked, someone in "
               f"{frames_with_people} of {frame_count} frames; smoothing {'on' if smoothing else 'off'}; "
               f"{seconds:.1f} s ({seconds / frame_count:.2f} s per frame).")
    if video.truncated:
        of = f" of about {video.reported_frames}" if video.reported_frames > max_frames else ""
        message += f" Only the first {max_frames}{of} frames were processed (the limit per clip)."
    return VideoResult(video_path, npz_path, json_path, frame_count, frames_with_people, track_count,
                       video.fps, (width, height), video.truncated, dict(timer.ms), message)


def _predict_and_track(predictor, video: VideoReader, timer: StageTimer, progress) -> tuple[dict, int]:
    """Pass 1: ({field: array with one row per person-frame}, frames read). Fields: frame,
    track_id, bbox, pose, betas, cam_translation, focal_length."""
    expected = 2 * (min(video.reported_frames, video.max_frames) or video.max_frames)
    tracker = Tracker()
    rows: dict[str, list] = defaultdict(list)
    frame_count = 0
    for index, frame in enumerate(video):
        with timer.stage("predict"):
            result = predictor.predict(frame)
            # Nobody found: the whole frame's stand-in is no one to track.
            people = [] if result.nobody_found else result.people
        with timer.stage("track"):
            ids = tracker.update([p.bbox for p in people])
        for person, track_id in zip(people, ids):
            for key, value in (("frame", index), ("track_id", track_id), ("bbox", person.bbox),
                               ("pose", person.pose), ("betas", person.betas),
                               ("cam_translation", person.cam_translation),
                               ("focal_length", result.focal_length)):
                rows[key].append(value)
        frame_count = index + 1
        if progress:
            progress(frame_count, expected)
    return {k: np.stack(v) for k, v in rows.items()}, frame_count


def _smooth_tracks(rows: dict[str, np.ndarray], smoother: Smoother) -> None:
    """Each track's pose, betas and camera smoothed in place."""
    for track_id in np.unique(rows["track_id"]):
        m = rows["track_id"] == track_id
        rows["pose"][m], rows["betas"][m], rows["cam_translation"][m] = smoother(
            rows["frame"][m], rows["pose"][m], rows["betas"][m], rows["cam_translation"][m])


def _draw_and_encode(predictor, renderer, video: VideoReader, rows, video_path: Path, timer: StageTimer,
                     frame_done) -> None:
    """Pass 2: bodies from the (smoothed) parameters drawn over each frame, encoded to
    video_path; adds rows["joints2d"]."""
    width, height = video.size
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*FOURCC), video.fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {FOURCC} video to {video_path}.")
    principal = np.array([width / 2, height / 2])
    focal_length = float(rows["focal_length"][0])  # depends on the frame size only
    faces = predictor.faces()
    rows["joints2d"] = np.zeros((len(rows["frame"]), 24, 2), np.float32)
    try:
        for index, frame in enumerate(video):
            m = np.nonzero(rows["frame"] == index)[0]
            if len(m):
                with timer.stage("body_model"):
                    vertices, rows["joints2d"][m] = _posed_bodies(
                        predictor, rows["pose"][m], rows["betas"][m], rows["cam_translation"][m],
                        focal_length, principal)
                with timer.stage("render"):
                    meshes = [MeshToRender(v + t, faces, color=person_color(int(i)))
                              for v, t, i in zip(vertices, rows["cam_translation"][m], rows["track_id"][m])]
                    frame = renderer.overlay(frame, meshes, focal_length, principal)
                    for i, box in zip(rows["track_id"][m], rows["bbox"][m]):
                        _label(frame, int(i), box)
            with timer.stage("encode"):
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if frame_done:
                frame_done(index + 1)
    finally:
        writer.release()


def _save_rows(rows: dict[str, np.ndarray], video: VideoReader, smoothing: bool, body_model: str, base: Path):
    """The per person-frame results as base.npz and base.json (pose as axis-angle), with the
    label of the body model they are for (the open model's betas are not SMPL's)."""
    width, height = video.size
    out = {k: rows[k] for k in ("frame", "track_id", "bbox", "betas", "cam_translation", "joints2d")}
    out["pose_axis_angle"] = rotmat_to_axis_angle(torch.from_numpy(rows["pose"])).reshape(-1, 72).numpy()
    header = {"video": video.path.name, "body_model": body_model, "fps": video.fps, "width": width,
              "height": height, "smoothing": smoothing, "focal_length": float(rows["focal_length"][0]),
              "principal_point": [width / 2, height / 2]}
    npz_path, json_path = base.with_suffix(".npz"), base.with_suffix(".json")
    np.savez_compressed(npz_path, **out, **{k: np.asarray(v) for k, v in header.items()})
    json_path.write_text(json.dumps({**header, "people": _json_rows(out, video.fps)}))
    return npz_path, json_path


def _posed_bodies(predictor, pose, betas, cam_translation, focal_length, principal):
    """Vertices (N, V, 3) and projected SMPL joints (N, 24, 2) for N people's parameters,
    computed as Predictor.predict does."""
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=predictor.device)  # noqa: E731
    with torch.inference_mode():
        body = predictor.body_model.posed(as_tensor(pose), as_tensor(betas))
        joints2d = perspective_projection(body.joints[:, :24], as_tensor(cam_translation), focal_length,
                                          as_tensor(principal))
    return body.vertices.cpu().numpy(), joints2d.cpu().numpy()


def _label(image: np.ndarray, track_id: int, box: np.ndarray) -> None:
    """The track id, in its colour, centred just above the person's box (kept inside the image)."""
    h, w = image.shape[:2]
    scale = max(0.4, max(h, w) / 1000)
    text, font = f"#{track_id}", cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 0.6 * scale, max(2, round(3 * scale)))
    x = int(np.clip((box[0] + box[2]) / 2 - tw / 2, 2, max(2, w - tw - 2)))
    y = int(np.clip(box[1] - 6 * scale, th + 4, h - 4))
    cv2.putText(image, text, (x, y), font, 0.6 * scale, (0, 0, 0), max(2, round(3 * scale)), cv2.LINE_AA)
    cv2.putText(image, text, (x, y), font, 0.6 * scale, to_uint8(person_color(track_id)),
                max(1, round(scale)), cv2.LINE_AA)


def _json_rows(arrays: dict[str, np.ndarray], fps: float) -> list[dict]:
    """One dict per person-frame, floats rounded to keep the file small."""
    r = lambda a, d=5: np.round(np.asarray(a, np.float64), d).tolist()  # noqa: E731
    return [{"frame": int(f), "time": round(f / fps, 4), "track_id": int(t), "bbox": r(b, 2),
             "pose_axis_angle": r(p), "betas": r(s), "cam_translation": r(c), "joints2d": r(j, 2)}
            for f, t, b, p, s, c, j in zip(arrays["frame"], arrays["track_id"], arrays["bbox"],
                                           arrays["pose_axis_angle"], arrays["betas"],
                                           arrays["cam_translation"], arrays["joints2d"])]
