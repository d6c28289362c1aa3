"""Plausible human poses for rendering synthetic training data with a SMPL-format body model.

A body pose is a float32 (23, 3) array: the axis-angle rotation of SMPL joints 1..23 (the
pelvis / global orientation excluded), each local to its parent and expressed in the rest
frame's axes, exactly what smplx takes as `body_pose` (reshaped to (B, 69)).

Rest frame: zero pose is a T-pose, Y up, the body faces +Z, its left side is at +X, metres.
Signs, for the left side and the centre (the right side mirrors them: x kept, y and z negated):
  x  hip flexion (thigh forward) -, knee flexion +, ankle plantar flexion (toes down) +,
     spine / neck / head flexion (bend forward) +, shoulder: a lowered arm swings back +
  y  elbow flexion (forearm forward) -, shoulder / collar: arm forward -,
     spine / neck / head: turns towards the body's left +
  z  shoulder / collar: arm raised +, wrist: hand up +, hip abduction (leg out) +,
     spine / neck / head: bends towards the body's right +

JOINT_LIMITS bounds each axis-angle component separately (a box, like small Euler ranges).
Because the box is convex, any convex combination of in-limit poses is in limits, which is
why poses are blended and interpolated linearly in axis-angle (see `blend`).
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial.transform import Rotation

from pare_demo.body.joint_names import SMPL_FLIP_PERMUTATION, SMPL_JOINT_NAMES, SMPL_PARENTS
from pare_demo.body.mirror import MIRROR_AXIS_ANGLE

BODY_JOINT_NAMES = SMPL_JOINT_NAMES[1:]
NUM_BODY_JOINTS = len(BODY_JOINT_NAMES)  # 23
_INDEX = {name: i for i, name in enumerate(BODY_JOINT_NAMES)}


_MIRROR = [j - 1 for j in SMPL_FLIP_PERMUTATION[1:]]  # body joint -> its left/right partner

# ---------------------------------------------------------------------------------------------
# Joint limits, degrees, ((x_min, x_max), (y_min, y_max), (z_min, z_max)), left side and centre.
_LIMITS_DEG = {
    "left_hip": ((-130, 30), (-35, 40), (-25, 60)),
    "spine1": ((-25, 50), (-25, 25), (-20, 20)),
    "left_knee": ((0, 150), (-8, 8), (-8, 8)),
    "spine2": ((-15, 35), (-20, 20), (-15, 15)),
    "left_ankle": ((-30, 50), (-20, 20), (-20, 20)),
    "spine3": ((-15, 35), (-20, 20), (-15, 15)),
    "left_foot": ((-40, 20), (-5, 5), (-5, 5)),  # toes: bent up -
    "neck": ((-35, 45), (-40, 40), (-25, 25)),
    "left_collar": ((-15, 15), (-20, 15), (-10, 30)),
    "head": ((-30, 30), (-40, 40), (-20, 20)),
    "left_shoulder": ((-100, 100), (-110, 45), (-85, 100)),
    "left_elbow": ((-60, 60), (-150, 0), (-10, 10)),  # x: forearm twist
    "left_wrist": ((-50, 50), (-25, 35), (-70, 60)),
    "left_hand": ((-15, 15), (-15, 15), (-25, 15)),  # the knuckles
}


def _limits_array() -> np.ndarray:
    limits = np.zeros((NUM_BODY_JOINTS, 3, 2))
    for name, ranges in _LIMITS_DEG.items():
        limits[_INDEX[name]] = ranges
        if name.startswith("left_"):
            mirrored = np.array(ranges) * MIRROR_AXIS_ANGLE[:, None]
            limits[_MIRROR[_INDEX[name]]] = np.sort(mirrored, axis=1)
    return np.deg2rad(limits).astype(np.float32)


# (23, 3, 2) radians: JOINT_LIMITS[j, axis] = (min, max) of body joint j = SMPL joint j + 1.
JOINT_LIMITS = _limits_array()


def clamp_to_limits(pose: np.ndarray) -> np.ndarray:
    """Clip (..., 23, 3) axis-angle poses component-wise to JOINT_LIMITS."""
    return np.clip(pose, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]).astype(np.float32)


def within_limits(pose: np.ndarray, tol: float = 1e-5) -> bool:
    pose = np.asarray(pose)
    return bool(np.all(pose >= JOINT_LIMITS[..., 0] - tol) and np.all(pose <= JOINT_LIMITS[..., 1] + tol))


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """The left-right mirror image of (..., 23, 3) body poses (no global orientation)."""
    return (np.asarray(pose)[..., _MIRROR, :] * MIRROR_AXIS_ANGLE).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Key poses, authored as joint -> (axes, *degrees): extrinsic rotations about the parent's rest
# axes applied in the order given, e.g. ("zx", -70, -20) lowers the left arm, then swings it
# 20 degrees forward.
def _pose(spec: dict) -> np.ndarray:
    pose = np.zeros((NUM_BODY_JOINTS, 3))
    for name, (axes, *angles) in spec.items():
        pose[_INDEX[name]] = Rotation.from_euler(axes, angles, degrees=True).as_rotvec()
    return pose.astype(np.float32)


def _both(name: str, axes: str, *angles: float) -> dict:
    """The same rotation on the left joint and, mirrored, on the right one."""
    mirrored = [a if axis == "x" else -a for axis, a in zip(axes, angles)]
    return {f"left_{name}": (axes, *angles), f"right_{name}": (axes, *mirrored)}


_RELAXED_ARMS = {
    **_both("collar", "z", -5), **_both("shoulder", "zx", -68, -5),
    **_both("elbow", "y", -12), **_both("wrist", "z", -5),
}
_STANDING = {**_RELAXED_ARMS, **_both("knee", "x", 3), **_both("hip", "z", 3)}

_WALKING = {  # left leg forward at heel strike, right leg pushing off
    **_RELAXED_ARMS,
    "left_hip": ("x", -25), "left_knee": ("x", 5), "left_ankle": ("x", -8),
    "right_hip": ("x", 15), "right_knee": ("x", 20), "right_ankle": ("x", 18), "right_foot": ("x", -25),
    "left_shoulder": ("zx", -68, 18), "right_shoulder": ("zx", 68, -18),
    "left_elbow": ("y", -12), "right_elbow": ("y", 22), "spine3": ("y", 5),
}
_RUNNING = {  # left thigh driving forward, right leg pushing off
    "spine1": ("x", 8), "spine2": ("x", 4), "neck": ("x", -8),
    "left_hip": ("x", -55), "left_knee": ("x", 75), "left_ankle": ("x", -5),
    "right_hip": ("x", 20), "right_knee": ("x", 35), "right_ankle": ("x", 30), "right_foot": ("x", -20),
    **_both("collar", "z", -5),
    "left_shoulder": ("zx", -70, 35), "right_shoulder": ("zx", 70, -40),
    "left_elbow": ("y", -80), "right_elbow": ("y", 95), "spine3": ("y", 8),
}
_SITTING = {
    **_both("hip", "xz", -90, 6), **_both("knee", "x", 88), **_both("ankle", "x", 3),
    **_both("collar", "z", -5), **_both("shoulder", "zx", -65, -25), **_both("elbow", "y", -45),
    "spine1": ("x", 5), "neck": ("x", 5),
}
_CROUCHING = {
    **_both("hip", "xz", -105, 15), **_both("knee", "x", 125), **_both("ankle", "x", -20),
    "spine1": ("x", 30), "spine2": ("x", 15), "spine3": ("x", 5), "neck": ("x", -25), "head": ("x", -10),
    **_both("shoulder", "zx", -65, -55), **_both("elbow", "y", -35),
}
_REACHING_FORWARD = {
    **_STANDING, **_both("shoulder", "zy", -10, -80), **_both("elbow", "y", -5),
    **_both("collar", "y", -10), **_both("wrist", "z", 10),
    "spine1": ("x", 10), "spine2": ("x", 8), "left_hip": ("x", -5), "right_hip": ("x", -5),
}
_REACHING_UP = {  # left arm up to a high shelf, on tiptoe
    **_STANDING, "left_collar": ("z", 25), "left_shoulder": ("zy", 65, -10), "left_elbow": ("y", -8),
    "spine2": ("z", 5), "spine3": ("z", 5), "neck": ("x", -20), "head": ("x", -10),
    **_both("ankle", "x", 25), **_both("foot", "x", -30),
}
_KICKING = {  # left leg kicking forward, arms out for balance
    "left_hip": ("x", -75), "left_knee": ("x", 15), "left_ankle": ("x", 35),
    "right_hip": ("x", -5), "right_knee": ("x", 10), "right_ankle": ("x", 5),
    "spine1": ("x", -10), "spine2": ("x", -5), "neck": ("x", 10),
    "left_shoulder": ("zx", -40, 30), "right_shoulder": ("zx", 45, -20),
    **_both("elbow", "y", -25),
}
_ARMS_RAISED = {
    **_STANDING, **_both("collar", "z", 20), **_both("shoulder", "zy", 62, -10),
    **_both("elbow", "y", -10), "neck": ("x", -10),
}
_WAVING = {  # right hand waving at head height, forearm up
    **_STANDING, "right_collar": ("z", -10), "right_shoulder": ("xzy", -85, -15, 15),
    "right_elbow": ("y", 90), "right_wrist": ("z", -10), "neck": ("y", -10),
}
_HANDS_ON_HIPS = {
    **_STANDING, **_both("shoulder", "xzy", 85, -50, 20), **_both("elbow", "y", -85),
    **_both("wrist", "y", 15), **_both("hip", "z", 6),
}
_LUNGING = {  # left leg forward, right knee close to the ground
    "left_hip": ("x", -80), "left_knee": ("x", 85), "left_ankle": ("x", -5),
    "right_hip": ("x", 15), "right_knee": ("x", 95), "right_ankle": ("x", 40), "right_foot": ("x", -35),
    **_both("collar", "z", -5), **_both("shoulder", "zx", -65, 0), **_both("elbow", "y", -25),
    "spine1": ("x", 5),
}
_BENDING_OVER = {  # the pelvis stays upright: the bend is in the hips and spine
    **_both("hip", "x", -15), **_both("knee", "x", 10), **_both("ankle", "x", -5),
    "spine1": ("x", 45), "spine2": ("x", 30), "spine3": ("x", 25), "neck": ("x", -20),
    **_both("shoulder", "zy", 12, -88), **_both("elbow", "y", -10),
}

# Everyday poses real photos are full of and the key poses above lack (Human3.6M's actions:
# phoning, eating, waiting; people sitting on the ground, kneeling, squatting). The arm poses and
# the legs of the low sitting pose were solved for by least squares on the open body model:
# joint positions as targets (e.g. the wrist at the ear for phoning, each wrist in front of the
# other elbow for crossed arms), within JOINT_LIMITS, then rounded to whole degrees.
_ARMS_CROSSED = {
    **_STANDING, "left_collar": ("xzy", 0, -2, 2), "right_collar": ("xzy", -1, 5, 12),
    "left_shoulder": ("xzy", -25, -61, -106), "right_shoulder": ("xzy", -19, 64, 84),
    "left_elbow": ("y", -90), "right_elbow": ("y", 85),
}
_PHONING = {  # left hand at the left ear
    **_STANDING, "left_collar": ("xzy", -3, 23, 16), "left_shoulder": ("xzy", -75, -42, -117),
    "left_elbow": ("y", -149),
}
_HAND_TO_MOUTH = {  # eating, drinking, smoking
    **_STANDING, "left_collar": ("xzy", 1, 12, -5), "left_shoulder": ("xzy", -75, -53, -106),
    "left_elbow": ("y", -129),
}
_HANDS_BEHIND_BACK = {
    **_STANDING, **_both("collar", "xzy", 0, -10, -3), **_both("shoulder", "xzy", 134, -54, 67),
    **_both("elbow", "y", -51),
}
_SITTING_ON_GROUND = {  # legs out in front, arms back beside the hips (hands a little off the floor)
    **_both("hip", "xz", -88, 8), **_both("knee", "x", 15), **_both("ankle", "x", 15),
    "spine1": ("x", 10), "spine2": ("x", 5), "neck": ("x", 5),
    **_both("collar", "z", -5), **_both("shoulder", "zx", -60, 35), **_both("elbow", "y", -5),
}
# Solved arm by arm for the wrists' positions only, so the upper arms' twist is free and differs
# between the sides.
_LOW_SITTING_LEGS_CROSSED = {  # on a low seat or the heels, shins crossed, hands on the knees
    "left_hip": ("xzy", -100, -41, 6), "right_hip": ("xzy", -99, 41, -7),
    "left_knee": ("x", 106), "right_knee": ("x", 117), **_both("ankle", "x", 15),
    "spine1": ("x", 10), "spine2": ("x", 5), "neck": ("x", 5),
    "left_collar": ("xzy", -1, -10, -12), "right_collar": ("xzy", -1, 10, 8),
    "left_shoulder": ("xzy", 61, -41, -36), "right_shoulder": ("xzy", 15, 47, 45),
    "left_elbow": ("y", -16), "right_elbow": ("y", 2),
}
_KNEELING = {  # upright, shins on the ground behind
    **_RELAXED_ARMS, **_both("hip", "x", -5), **_both("knee", "x", 95), **_both("ankle", "x", 40),
    "spine1": ("x", 5),
}
_DEEP_SQUAT = {  # heels down, knees wide, forearms forward (a baseball catcher)
    **_both("hip", "zx", 30, -120), **_both("knee", "x", 148), **_both("ankle", "x", -28),
    "spine1": ("x", 25), "spine2": ("x", 10), "neck": ("x", -25), "head": ("x", -10),
    **_both("shoulder", "zy", -45, -50), **_both("elbow", "y", -60),
}

KEY_POSES: dict[str, np.ndarray] = {
    "standing": _pose(_STANDING),
    "walking_a": _pose(_WALKING),
    "walking_b": mirror_pose(_pose(_WALKING)),
    "running_a": _pose(_RUNNING),
    "running_b": mirror_pose(_pose(_RUNNING)),
    "sitting": _pose(_SITTING),
    "crouching": _pose(_CROUCHING),
    "reaching_forward": _pose(_REACHING_FORWARD),
    "reaching_up": _pose(_REACHING_UP),
    "kicking": _pose(_KICKING),
    "arms_raised": _pose(_ARMS_RAISED),
    "waving": _pose(_WAVING),
    "hands_on_hips": _pose(_HANDS_ON_HIPS),
    "lunging": _pose(_LUNGING),
    "bending_over": _pose(_BENDING_OVER),
}
EVERYDAY_POSES: dict[str, np.ndarray] = {  # clamped: whole degrees overshoot a limit by < 0.5 degree
    name: clamp_to_limits(_pose(spec)) for name, spec in {
        "arms_crossed": _ARMS_CROSSED, "phoning": _PHONING, "hand_to_mouth": _HAND_TO_MOUTH,
        "hands_behind_back": _HANDS_BEHIND_BACK, "sitting_on_ground": _SITTING_ON_GROUND,
        "low_sitting_legs_crossed": _LOW_SITTING_LEGS_CROSSED, "kneeling": _KNEELING,
        "deep_squat": _DEEP_SQUAT,
    }.items()
}
# What training.synth's --poses picks from: "key" reproduces the synthetic sets made before the
# everyday poses existed (the same seed, the same frames).
POSE_SETS: dict[str, dict[str, np.ndarray]] = {"key": KEY_POSES, "everyday": {**KEY_POSES, **EVERYDAY_POSES}}


# ---------------------------------------------------------------------------------------------
# Sampling. Everything random goes through the numpy Generator passed in.
def blend(a: np.ndarray, b: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """(1 - weight) * a + weight * b in axis-angle.

    Chosen over per-joint slerp: the limit box is convex in axis-angle, so blends of in-limit
    poses need no clamping, and all body-joint rotations stay below 150 degrees, far from the
    pi wrap-around, so the path is smooth; it only departs from the geodesic (a bit) when the
    two rotation axes differ."""
    weight = np.asarray(weight, dtype=np.float32)
    return ((1 - weight) * np.asarray(a) + weight * np.asarray(b)).astype(np.float32)


def sample_pose(rng: np.random.Generator, names=None, noise: float = 0.05,
                mirror_prob: float = 0.5, poses: dict[str, np.ndarray] = KEY_POSES) -> np.ndarray:
    """A random (23, 3) body pose: a blend of two of `poses` named `names` (default: all),
    mirrored left-right with probability `mirror_prob`, plus Gaussian noise per joint and
    axis of std `noise` times that axis's range, clamped to JOINT_LIMITS."""
    names = list(poses) if names is None else list(names)
    a, b = rng.choice(len(names), 2, replace=len(names) < 2)
    pose = blend(poses[names[a]], poses[names[b]], rng.uniform())
    if rng.uniform() < mirror_prob:
        pose = mirror_pose(pose)
    spread = JOINT_LIMITS[..., 1] - JOINT_LIMITS[..., 0]
    return clamp_to_limits(pose + noise * spread * rng.standard_normal(pose.shape))


def _chain_rotation(delta: np.ndarray) -> np.ndarray:
    """(23,) bound on how far each body part turns for a pose change `delta` (23, 3): the sum
    of its own and its ancestors' rotation changes (a hand turns with spine, shoulder, elbow)."""
    angles = np.linalg.norm(delta, axis=-1)
    total = np.zeros(NUM_BODY_JOINTS)
    for j in range(NUM_BODY_JOINTS):  # parents come before their children
        parent = SMPL_PARENTS[j + 1] - 1
        total[j] = angles[j] + (total[parent] if parent >= 0 else 0.0)
    return total


def sample_sequence(rng: np.random.Generator, frames: int, fps: float = 30.0,
                    key_interval: float = 1.0, max_speed_deg: float = 120.0,
                    noise: float = 0.05, poses: dict[str, np.ndarray] = KEY_POSES) -> np.ndarray:
    """(frames, 23, 3) smooth motion through sampled keyframes of `poses`.

    Keyframes come about every `key_interval` seconds, later when a body part would turn
    faster than `max_speed_deg` per second on average (counting its ancestors' rotations).
    Successive keyframes share one key pose, so the activity drifts rather than jumps. Each
    axis-angle component is interpolated with a monotone cubic (PCHIP): smooth, velocity zero
    only where a component turns back, and never overshooting its keyframe values, so every
    frame stays within the (convex) limits."""
    names = list(poses)
    if len(names) < 2:
        raise ValueError(f"a sequence moves between key poses: give at least two, not {names}")
    pair = list(rng.choice(names, 2, replace=False))
    times, keys = [0.0], [sample_pose(rng, pair, noise, poses=poses)]
    duration = (frames - 1) / fps
    while times[-1] < duration:
        pair = [pair[1], rng.choice([n for n in names if n != pair[1]])]
        pose = sample_pose(rng, pair, noise, poses=poses)
        turn = np.rad2deg(_chain_rotation(pose - keys[-1]).max())
        times.append(times[-1] + max(key_interval * rng.uniform(0.75, 1.25), turn / max_speed_deg))
        keys.append(pose)
    if len(keys) == 1:  # frames <= 1
        return np.stack(keys)[:frames]
    motion = PchipInterpolator(times, np.stack(keys), axis=0)(np.arange(frames) / fps)
    return clamp_to_limits(motion)  # only float rounding can leave the limits


LYING_PROB = 0.05   # how often a rendered body lies on the floor unless told (synthetic sets 1-4)


def random_global_orient(rng: np.random.Generator, max_tilt_deg: float = 10.0,
                         lying_prob: float = LYING_PROB) -> np.ndarray:
    """(3,) axis-angle root orientation: a uniform heading about Y; upright with a small
    forward/sideways tilt, or with probability `lying_prob` lying on the back, front or a side."""
    heading = Rotation.from_rotvec([0.0, rng.uniform(0.0, 2 * np.pi), 0.0])
    tilt_deg = np.clip(rng.normal(0.0, max_tilt_deg / 2, size=2), -max_tilt_deg, max_tilt_deg)
    if rng.uniform() < lying_prob:
        axis = rng.integers(2)  # pitch (back / front) or roll (sides)
        tilt_deg[axis] += rng.choice([-90.0, 90.0])
    tilt = Rotation.from_euler("xz", tilt_deg, degrees=True)
    return (heading * tilt).as_rotvec().astype(np.float32)
