import json

import cv2
import numpy as np
import pytest
import roma
import torch

from pare_demo.detect import Detection, PersonDetector
from pare_demo.predictor import Predictor
from pare_demo.app.video import Smoother, Tracker, VideoError, VideoReader, process_video

BACKGROUND = 128
SIZE = (320, 240)


class Figures:
    """A detector backend for the test clips: a box around each blob that is not background."""
    name = "test figures"

    def __call__(self, image):
        mask = (np.abs(image.astype(int) - BACKGROUND).sum(-1) > 60).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [Detection(np.array([x, y, x + w, y + h], float), 1.0, "figure")
                for x, y, w, h, area in stats[1:] if area > 100]


def write_clip(path, frames, fps=10.0, fourcc="mp4v"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_clip(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    capture.release()
    return frames, fourcc


def two_figures(count=12, newcomer_from=4):
    """A red figure walking right from the first frame, a green one walking left from
    `newcomer_from` on, on separate rows: they never overlap."""
    frames = []
    for t in range(count):
        frame = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)
        cv2.rectangle(frame, (20 + 6 * t, 20), (50 + 6 * t, 110), (230, 40, 40), -1)
        if t >= newcomer_from:
            cv2.rectangle(frame, (270 - 6 * t, 130), (300 - 6 * t, 220), (40, 200, 40), -1)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def predictor(small_checkpoint):
    detector = PersonDetector(prefer_torchvision=False)
    detector.backend = Figures()  # keeps PersonDetector's whole-image fallback
    return Predictor(small_checkpoint, device="cpu", detector=detector)


def test_tracker_keeps_ids_and_numbers_newcomers():
    tracker = Tracker(max_missed=5)
    rng = np.random.default_rng(0)
    a, b = np.array([10.0, 10, 60, 150]), np.array([300.0, 10, 350, 150])
    for t in range(10):
        boxes = [a + [8 * t, 0, 8 * t, 0], b - [8 * t, 0, 8 * t, 0]]
        order = rng.permutation(2)  # the detector's order means nothing
        ids = tracker.update([boxes[i] for i in order])
        assert [ids[list(order).index(i)] for i in range(2)] == [0, 1]
    # A newcomer gets the next id; person 1 missing for 3 frames keeps its id when back.
    a, b = a + [80, 0, 80, 0], b - [80, 0, 80, 0]
    new = np.array([500.0, 200, 550, 340])
    assert tracker.update([a, b, new]) == [0, 1, 2]
    for _ in range(3):
        assert tracker.update([a, new]) == [0, 2]
    assert tracker.update([b, a, new]) == [1, 0, 2]
    # Gone for longer than max_missed: a new track.
    for _ in range(6):
        tracker.update([a, b])
    assert tracker.update([a, b, new]) == [0, 1, 3]
    assert tracker.update([]) == []


def test_tracker_follows_a_fast_mover_by_its_velocity():
    # A 40 px wide box speeding up to 30 px per frame: IoU 0.14 with its last box, but
    # about 1 with where its velocity says it will be.
    xs = [0, 15] + [15 + 30 * t for t in range(1, 7)]
    tracker = Tracker(min_iou=0.3)
    assert [tracker.update([[x, 0, x + 40, 100]])[0] for x in xs] == [0] * 8


def test_smoother_reduces_jitter_and_keeps_proper_rotations():
    torch.manual_seed(0)
    frames = np.arange(60)
    axes = torch.nn.functional.normalize(torch.randn(24, 3), dim=-1)
    truth = roma.rotvec_to_rotmat(axes * 0.03 * torch.tensor(frames, dtype=torch.float32)[:, None, None])
    noisy = roma.rotvec_to_rotmat(0.05 * torch.randn(60, 24, 3)) @ truth
    betas = 0.3 + 0.1 * torch.randn(60, 10)
    cam = torch.tensor([0.1, 0.2, 8.0]) + 0.2 * torch.randn(60, 3)
    pose, sm_betas, sm_cam = Smoother()(frames, noisy.numpy(), betas.numpy(), cam.numpy())
    pose = torch.from_numpy(pose)

    def error(p):
        return roma.rotmat_geodesic_distance(p, truth).mean()

    def jitter(p):
        return roma.rotmat_geodesic_distance(p[1:], p[:-1]).mean()

    assert error(pose) < 0.5 * error(noisy)
    assert jitter(pose) < 0.4 * jitter(noisy) and abs(jitter(pose) - jitter(truth)) < 0.01
    assert torch.allclose(pose @ pose.transpose(-1, -2), torch.eye(3).expand(60, 24, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(pose), torch.ones(60, 24), atol=1e-5)
    assert sm_betas.std(0).mean() < 0.3 * betas.std(0).mean().item()
    assert sm_cam.std(0).mean() < 0.5 * cam.std(0).mean().item()
    # Off: the very same values back.
    raw = (noisy.numpy(), betas.numpy(), cam.numpy())
    assert all(a is b for a, b in zip(Smoother(enabled=False)(frames, *raw), raw))


def test_smoother_does_not_mix_across_a_long_gap():
    frames = np.r_[np.arange(10), np.arange(40, 50)]
    pose = np.tile(np.eye(3, dtype=np.float32), (20, 24, 1, 1))
    cam = np.zeros((20, 3), np.float32)
    cam[10:, 2] = 1.0  # a jump while the person was away
    _, _, smoothed = Smoother(betas_sigma=2.0)(frames, pose, np.zeros((20, 10), np.float32), cam)
    assert np.allclose(smoothed[:10], 0) and np.allclose(smoothed[10:, 2], 1)


def test_reader_scales_down_and_keeps_even_sizes(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", two_figures(count=3))
    reader = VideoReader(path, max_side=301)
    frames = list(reader)
    # 320x240 scaled by 301/320 is 301x226; VP8 needs even sizes, so 300x226.
    assert reader.size == (300, 226) and [f.shape for f in frames] == [(226, 300, 3)] * 3
    assert frames[0].dtype == np.uint8 and reader.fps == pytest.approx(10) and not reader.truncated
    assert len(list(VideoReader(path, max_frames=2))) == 2


@pytest.mark.slow
def test_video_pipeline_tracks_people_and_writes_clip_and_results(predictor, renderer, tmp_path):
    source = two_figures(count=8, newcomer_from=3)
    path = write_clip(tmp_path / "walk.mp4", source)
    calls = []
    result = process_video(predictor, renderer, path, tmp_path / "out", max_frames=6,
                           progress=lambda done, total: calls.append((done, total)))
    assert result.frame_count == 6 and result.truncated and "first 6 of about 8 frames" in result.message
    assert result.track_count == 2 and result.frames_with_people == 6 and result.size == SIZE
    assert calls[-1] == (12, 12) and len(calls) == 12
    assert {"predict", "track", "smooth", "render", "encode", "decode"} <= set(result.timings)

    frames, fourcc = read_clip(result.video_path)
    assert result.video_path.suffix == ".webm" and fourcc == "VP80"
    assert result.video_path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: Matroska/WebM
    assert len(frames) == 6 and frames[0].shape == (SIZE[1], SIZE[0], 3)
    changed = np.abs(frames[4].astype(int) - source[4]).sum(-1) > 60
    assert changed.sum() > 500  # meshes drawn over the frame

    # One row per person-frame: the red figure in frames 0-5 (id 0), the green one in 3-5 (id 1).
    rows = json.loads(result.json_path.read_text())["people"]
    assert [(r["frame"], r["track_id"]) for r in rows] == sorted(
        [(f, 0) for f in range(6)] + [(f, 1) for f in range(3, 6)])
    npz = np.load(result.npz_path)
    assert npz["pose_axis_angle"].shape == (9, 72) and npz["joints2d"].shape == (9, 24, 2)
    assert npz["betas"].shape == (9, 10) and npz["cam_translation"].shape == (9, 3)
    assert npz["bbox"].shape == (9, 4) and np.array_equal(npz["track_id"], [r["track_id"] for r in rows])
    # Both name the body model the betas are for (the open model's are not SMPL's).
    assert json.loads(result.json_path.read_text())["body_model"] == "open" and str(npz["body_model"]) == "open"
    red = npz["bbox"][npz["track_id"] == 0]
    assert np.all(np.diff(red[:, 0]) > 0)  # id 0 is the figure walking right


@pytest.mark.slow
def test_smoothing_off_gives_the_predictor_s_own_numbers(predictor, renderer, tmp_path):
    source = two_figures(count=4, newcomer_from=9)
    path = write_clip(tmp_path / "short.mp4", source)
    raw = process_video(predictor, renderer, path, tmp_path / "raw", smoothing=False)
    smooth = process_video(predictor, renderer, path, tmp_path / "smooth", smoothing=True)
    frame0 = next(iter(VideoReader(path)))
    direct = predictor.predict(frame0).people[0]
    row = json.loads(raw.json_path.read_text())["people"][0]
    assert np.allclose(row["pose_axis_angle"], direct.pose_axis_angle, atol=1e-4)
    assert np.allclose(row["joints2d"], direct.joints2d, atol=0.02)
    assert np.allclose(row["cam_translation"], direct.cam_translation, atol=1e-4)
    smoothed = np.load(smooth.npz_path)["pose_axis_angle"]
    assert not np.allclose(smoothed, np.load(raw.npz_path)["pose_axis_angle"], atol=1e-3)


def test_clip_without_people_says_so(predictor, renderer, tmp_path):
    blank = [np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)] * 5
    path = write_clip(tmp_path / "empty_room.mp4", blank)
    with pytest.raises(VideoError, match="No person found in any frame"):
        process_video(predictor, renderer, path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, reason", [(b"just some notes\n" * 50, "not a video"),
                                             (b"", "not a video|empty")])
def test_files_that_are_not_clips(predictor, renderer, tmp_path, content, reason):
    path = tmp_path / "notes.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=reason):
        process_video(predictor, renderer, path, tmp_path / "out")
    with pytest.raises(VideoError, match="does not exist"):
        process_video(predictor, renderer, tmp_path / "missing.mp4", tmp_path / "out")
    with pytest.raises(VideoError, match="No video was given"):
        process_video(predictor, renderer, None, tmp_path / "out")
