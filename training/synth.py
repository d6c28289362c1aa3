"""Synthetic training data in the official 3DPW layout, rendered from a body model.

    python -m training.synth --out DIR --sequences N --frames M --seed S
                             [--size PX] [--body-model B] [--workers W] [--split mixed]
                             [--poses key|everyday] [--lying P]

Writes DIR/imageFiles/<seq>/image_00000.jpg ... and DIR/sequenceFiles/<split>/<seq>.pkl
with 3DPW's keys, so pare_demo.data.pw3d reads it like a real download. Each sequence:
one or two people moving smoothly through plausible poses (training.poses), clothes by
body part with colours and stripes, a face and usually hair, a background photo
(scikit-image's, no people) or a procedural texture, varied light, camera distance,
height, tilt and focal length, and sometimes a box occluding part of the body. One body in
twenty lies on the floor (--lying sets how many).
Deterministic per seed.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import pickle
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from pare_demo.body import SMPL_JOINT_NAMES, load_body_model
from pare_demo.body.joint_names import EXTRA_KEYPOINT_NAMES
from pare_demo.images import to_rgb_uint8
from pare_demo.render import MeshToRender, Renderer
from training.poses import LYING_PROB, POSE_SETS, random_global_orient, sample_sequence

# scikit-image's bundled pictures without people (astronaut and camera have people).
BACKGROUND_PHOTOS = ("coffee", "chelsea", "rocket", "coins", "moon", "hubble_deep_field",
                     "immunohistochemistry", "brick", "grass", "gravel", "horse", "retina",
                     "cell", "stereo_motorcycle", "page", "text")
SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.72, 0.58], [0.78, 0.57, 0.44],
                       [0.62, 0.44, 0.32], [0.45, 0.31, 0.22], [0.32, 0.22, 0.16]])
HAIR_COLORS = np.array([[0.05, 0.04, 0.03], [0.17, 0.10, 0.06], [0.33, 0.21, 0.12], [0.72, 0.58, 0.34],
                        [0.50, 0.22, 0.09], [0.62, 0.62, 0.60]])  # black, browns, blond, red, grey
# OpenPose COCO-18 keypoints (3DPW's poses2d) from our joints and keypoints.
COCO18 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
          "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
          "left_knee", "left_ankle", "reye", "leye", "rear", "lear")
ALL_POINTS = SMPL_JOINT_NAMES + EXTRA_KEYPOINT_NAMES
UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Job:
    out: str
    name: str
    split: str
    frames: int
    size: int
    seed: int
    body_model: str
    poses: str = "key"    # training.poses.POSE_SETS
    lying: float = LYING_PROB   # probability that a body lies on its back, front or a side


def split_of(index: int, seed: int, split: str) -> str:
    if split != "mixed":
        return split
    u = (zlib.crc32(f"{seed}-{index}".encode()) % 1000) / 1000  # stable ~80/10/10
    return "train" if u < 0.8 else "validation" if u < 0.9 else "test"


# ---------------------------------------------------------------- appearance
def clothing_colors(rng: np.random.Generator, part_labels: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Per-vertex colours: skin, a top (short or long sleeves), trousers or shorts, shoes,
    with optional stripes on the top."""
    part = lambda *names: np.isin(part_labels, [SMPL_JOINT_NAMES.index(n) for n in names])  # noqa: E731
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1)
    colors = np.tile(skin, (len(part_labels), 1))
    top, bottom, shoes = (rng.uniform(0.05, 0.95, 3) for _ in range(3))
    torso = part("pelvis", "spine1", "spine2", "spine3", "left_collar", "right_collar",
                 "left_shoulder", "right_shoulder")
    if rng.random() < 0.6:
        torso |= part("left_elbow", "right_elbow")  # long sleeves
    colors[torso] = top
    if rng.random() < 0.4:  # stripes across the top
        stripes = (np.sin(vertices[:, 1] * rng.uniform(20, 60)) > 0) & torso
        colors[stripes] = rng.uniform(0.05, 0.95, 3)
    legs = part("left_hip", "right_hip") | part("pelvis") & (vertices[:, 1] < vertices[:, 1].mean())
    if rng.random() < 0.75:
        legs |= part("left_knee", "right_knee")  # long trousers
    colors[legs] = bottom
    colors[part("left_ankle", "right_ankle", "left_foot", "right_foot")] = shoes * 0.6
    return np.clip(colors * rng.uniform(0.85, 1.15, 3), 0, 1)


def paint_head(rng: np.random.Generator, colors: np.ndarray, rest_vertices: np.ndarray,
               part_labels: np.ndarray, hair_prob: float = 0.85) -> None:
    """Eyes, brows, a mouth and (usually) hair on the head's vertices, in place.

    Without them the head is a bald skin-coloured ball and a body seen from the back looks
    like one seen from the front: on the first synthetic set about one frame in five came
    out turned round (global orientation off by more than 90 degrees). rest_vertices: the
    body model's template (T-pose, Y up, facing +Z); vertex identity does not depend on
    shape, so one template paints every body."""
    head = part_labels == SMPL_JOINT_NAMES.index("head")
    # Head-local frame: the origin midway between the ears at nose height, so the numbers
    # below are plain face proportions in metres.
    nose = rest_vertices[head][np.argmax(rest_vertices[head, 2])]
    x, y, z = (rest_vertices - [nose[0], nose[1], nose[2] - 0.12]).T
    front = head & (z > 0.06)

    def ellipse(cx, cy, rx, ry):
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1

    hair_color = HAIR_COLORS[rng.integers(len(HAIR_COLORS))] * rng.uniform(0.8, 1.2)
    skin = colors[head].mean(0)
    for side in (-1, 1):
        colors[front & ellipse(side * 0.032, 0.034, 0.013, 0.007)] = rng.uniform(0.02, 0.10) * np.ones(3)
        colors[front & ellipse(side * 0.034, 0.054, 0.016, 0.004)] = hair_color * 0.8
    colors[front & ellipse(0.0, -0.036, 0.02, 0.005)] = skin * [0.75, 0.45, 0.45]
    if rng.random() < hair_prob:
        # The hairline runs from the forehead (y 0.085 at the front) down the back of the
        # head to `length` below the nose's height.
        length = rng.uniform(0.0, 0.09)
        back = np.clip((0.05 - z) / 0.07, 0.0, 1.0)
        colors[head & (y > 0.085 - (0.085 + length) * back)] = np.clip(hair_color, 0, 1)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A crop of a bundled photo, or a procedural texture; RGB uint8 (size, size, 3)."""
    import skimage.data

    if rng.random() < 0.6:
        photo = getattr(skimage.data, BACKGROUND_PHOTOS[rng.integers(len(BACKGROUND_PHOTOS))])()
        photo = to_rgb_uint8(photo[0] if isinstance(photo, tuple) else photo)  # gray, bool, RGBA too
        h, w = photo.shape[:2]
        side = int(rng.uniform(0.5, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        image = cv2.resize(np.ascontiguousarray(photo[y:y + side, x:x + side]), (size, size))
        if rng.random() < 0.5:
            image = image[:, ::-1]
        tint = rng.uniform(0.7, 1.2, 3)
        return np.clip(image * tint, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    t = np.clip(yy * rng.uniform(0.5, 1.5) + xx * rng.uniform(-0.5, 0.5), 0, 1)[..., None]
    image = c0 * (1 - t) + c1 * t
    if rng.random() < 0.5:  # tiles or a floor pattern
        k = rng.uniform(6, 30)
        image *= 0.8 + 0.2 * ((np.floor(xx * k) + np.floor(yy * k)) % 2)[..., None]
    image += rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def random_occluder(rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A rectangle in box-relative units (x0, y0, x1, y1 in 0-1) and a colour."""
    w, h = rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.4)
    cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), tuple(int(c) for c in rng.integers(0, 255, 3))


def paint_occluder(image: np.ndarray, box: np.ndarray, occluder) -> None:
    """Paint the occluder over the person's box (in place)."""
    rel, color = occluder
    x0, y0, x1, y1 = box
    p = [x0 + rel[0] * (x1 - x0), y0 + rel[1] * (y1 - y0), x0 + rel[2] * (x1 - x0), y0 + rel[3] * (y1 - y0)]
    cv2.rectangle(image, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), color, -1)


# ---------------------------------------------------------------- camera
def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera extrinsics (4 x 4) of a camera at eye looking at target (x right, y down)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(-UP, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    ext = np.eye(4)
    ext[:3, :3] = np.stack([x, y, z])
    ext[:3, 3] = -ext[:3, :3] @ eye
    return ext


# ---------------------------------------------------------------- one sequence
def render_sequence(job: Job, model=None, renderer=None) -> int:
    rng = np.random.default_rng([job.seed, zlib.crc32(job.name.encode())])
    model = model or load_body_model(job.body_model)
    renderer = renderer or Renderer(job.size, job.size)
    faces = np.asarray(model.faces, np.int64)
    part_labels = model.part_labels.numpy()
    rest_vertices = model.v_template.numpy().astype(np.float64)
    people = 2 if rng.random() < 0.2 else 1
    n = job.frames

    betas = np.clip(rng.normal(0, 0.9, (people, 10)), -2.5, 2.5)
    poses, trans, colors, joints_world, verts_world = [], [], [], [], []
    for k in range(people):
        body_pose = sample_sequence(rng, n, poses=POSE_SETS[job.poses]).reshape(n, 69)
        heading = random_global_orient(rng, lying_prob=job.lying)
        orient = np.repeat(heading[None], n, 0)
        spot = np.array([rng.uniform(-1.2, 1.2) if people > 1 else 0.0, 0.0, rng.uniform(-0.5, 0.5)])
        with torch.no_grad():
            out = model(betas=torch.tensor(np.repeat(betas[k:k + 1], n, 0), dtype=torch.float32),
                        global_orient=torch.tensor(orient, dtype=torch.float32),
                        body_pose=torch.tensor(body_pose, dtype=torch.float32))
        v, j = out.vertices.numpy().astype(np.float64), out.joints.numpy().astype(np.float64)
        # Stand on the ground (y = 0) at this spot; a little drift over the sequence.
        drift = np.linspace(0, 1, n)[:, None] * rng.normal(0, 0.3, 3) * [1, 0, 1]
        t = spot - [j[0, 0, 0], v[0, :, 1].min(), j[0, 0, 2]] + drift
        poses.append(np.concatenate([orient, body_pose], 1))
        trans.append(t)
        joints_world.append(j + t[:, None])
        verts_world.append(v + t[:, None])
        colors.append(clothing_colors(rng, part_labels, v[0]))
        paint_head(rng, colors[-1], rest_vertices, part_labels)
    pelvis = np.mean([jw[:, 0] for jw in joints_world], axis=0)  # (n, 3)

    # Camera: distance, height, yaw around the people, small roll-free tilt; fixed or slowly moving.
    distance = rng.uniform(2.0, 5.0) + (1.0 if people > 1 else 0.0)
    yaw0, yaw_speed = rng.uniform(-np.pi, np.pi), rng.normal(0, 0.2)
    height = rng.uniform(0.3, 2.2)
    fov = np.deg2rad(rng.uniform(35, 65))
    focal = job.size / 2 / np.tan(fov / 2)
    intrinsics = np.array([[focal, 0, job.size / 2], [0, focal, job.size / 2], [0, 0, 1.0]])
    bg = background(rng, job.size)
    light = rng.uniform(0.6, 1.4)
    occluder = random_occluder(rng) if rng.random() < 0.25 else None

    image_dir = Path(job.out) / "imageFiles" / job.name
    image_dir.mkdir(parents=True, exist_ok=True)
    cam_poses, poses2d = [], [[] for _ in range(people)]
    coco = [ALL_POINTS.index(name) for name in COCO18]
    for i in range(n):
        yaw = yaw0 + yaw_speed * i / 30
        eye = np.array([pelvis[i, 0] + distance * np.sin(yaw), height, pelvis[i, 2] + distance * np.cos(yaw)])
        ext = look_at(eye, pelvis[i])
        cam_poses.append(ext)
        meshes = [MeshToRender(verts_world[k][i] @ ext[:3, :3].T + ext[:3, 3], faces,
                               vertex_colors=np.clip(colors[k] * light, 0, 1)) for k in range(people)]
        rgb, alpha = renderer.render(meshes, job.size, job.size, focal)
        a = alpha[..., None]
        frame = (rgb * a * 255 + bg * (1 - a)).round().astype(np.uint8)
        for k in range(people):
            cam_pts = joints_world[k][i] @ ext[:3, :3].T + ext[:3, 3]
            uv = cam_pts @ intrinsics.T
            uv = uv[:, :2] / uv[:, 2:3]
            poses2d[k].append(np.concatenate([uv[coco].T, np.ones((1, len(coco)))], 0))
            if occluder is not None and k == 0:
                paint_occluder(frame, np.concatenate([uv[:24].min(0), uv[:24].max(0)]), occluder)
        cv2.imwrite(str(image_dir / f"image_{i:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])

    sequence = {
        "sequence": job.name,
        "genders": ["n"] * people,
        "betas": [b.astype(np.float64) for b in betas],
        "poses": [p.astype(np.float64) for p in poses],
        "trans": [t.astype(np.float64) for t in trans],
        "cam_poses": np.stack(cam_poses),
        "cam_intrinsics": intrinsics,
        "poses2d": [np.stack(p) for p in poses2d],
        "jointPositions": [jw[:, :24].reshape(n, 72) for jw in joints_world],
        "campose_valid": [np.ones(n, dtype=bool) for _ in range(people)],
        "img_frame_ids": np.arange(n),
        "body_model": job.body_model,
    }
    seq_dir = Path(job.out) / "sequenceFiles" / job.split
    seq_dir.mkdir(parents=True, exist_ok=True)
    with open(seq_dir / f"{job.name}.pkl", "wb") as f:
        pickle.dump(sequence, f, protocol=2)
    return n


_worker_state: dict = {}


def _one_thread() -> None:
    """Pool initializer: the workers share the cores, one PyTorch thread each."""
    torch.set_num_threads(1)


def _run(job: Job) -> int:
    if "renderer" not in _worker_state:  # one body model and GL context per process
        _worker_state["model"] = load_body_model(job.body_model)
        _worker_state["renderer"] = Renderer(job.size, job.size)
    return render_sequence(job, _worker_state["model"], _worker_state["renderer"])


def check_lying(lying: float) -> None:
    if not 0.0 <= lying <= 1.0:
        raise ValueError(f"lying is a probability, between 0 and 1, not {lying}")


def generate(out: Path, sequences: int, frames: int, seed: int, size: int = 512,
             body_model: str = "open", workers: int = 1, split: str = "mixed", prefix: str = "synth",
             poses: str = "key", lying: float = LYING_PROB) -> dict:
    check_lying(lying)
    jobs = [Job(str(out), f"{prefix}_s{seed}_{i:04d}", split_of(i, seed, split), frames, size, seed, body_model,
                poses, lying) for i in range(sequences)]
    start = time.time()
    done = 0
    if workers > 1:
        from pare_demo.render import choose_platform

        choose_platform()  # probe once here; workers inherit the choice
        with mp.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
            for count in tqdm(pool.imap_unordered(_run, jobs), total=len(jobs), desc="sequences"):
                done += count
    else:
        for job in tqdm(jobs, desc="sequences"):
            done += _run(job)
    seconds = time.time() - start
    return {"sequences": len(jobs), "frames": done, "seconds": round(seconds, 1),
            "frames_per_second": round(done / max(seconds, 1e-9), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render synthetic data in the 3DPW layout")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--body-model", default="open")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--split", choices=("train", "validation", "test", "mixed"), default="mixed")
    parser.add_argument("--poses", choices=tuple(POSE_SETS), default="key",
                        help="key poses to move through: 'key' (synthetic sets 1-3), or 'everyday' "
                             "(also arms crossed, phoning, eating, hands behind the back, sitting on "
                             "the ground, kneeling, squatting)")
    parser.add_argument("--lying", type=float, default=LYING_PROB,
                        help=f"probability that a body lies on its back, front or a side (default "
                             f"{LYING_PROB}, as the sets made before this option)")
    args = parser.parse_args(argv)
    try:
        check_lying(args.lying)
    except ValueError as error:
        parser.error(f"--{error}")
    stats = generate(args.out, args.sequences, args.frames, args.seed, args.size, args.body_model,
                     args.workers, args.split, poses=args.poses, lying=args.lying)
    print(f"{stats['frames']} frames in {stats['sequences']} sequences, {stats['seconds']} s "
          f"({stats['frames_per_second']} frames/s) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
