import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_demo.body import load_body_model
from pare_demo.body.joint_names import SMPL_FLIP_PERMUTATION, SMPL_JOINT_NAMES, SMPL_PARENTS
from training.poses import (
    BODY_JOINT_NAMES, EVERYDAY_POSES, JOINT_LIMITS, KEY_POSES, POSE_SETS, clamp_to_limits, mirror_pose,
    random_global_orient, sample_pose, sample_sequence, within_limits,
)

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
REQUIRED_KEY_POSES = (
    "standing", "walking_a", "walking_b", "running_a", "running_b", "sitting", "crouching",
    "reaching_forward", "reaching_up", "kicking", "arms_raised", "waving", "hands_on_hips",
    "lunging", "bending_over",
)


@pytest.fixture(scope="module")
def model():
    return load_body_model("open")


def joints_of(model, poses, global_orient=None) -> np.ndarray:
    """(B, 23, 3) body poses -> (B, 24, 3) SMPL joints, mean shape."""
    poses = torch.as_tensor(np.asarray(poses, dtype=np.float32)).reshape(-1, 69)
    orient = torch.zeros(len(poses), 3) if global_orient is None else torch.as_tensor(global_orient)
    with torch.no_grad():
        out = model(betas=torch.zeros(len(poses), 10), body_pose=poses, global_orient=orient)
    return out.joints[:, :24].numpy()


@pytest.fixture(scope="module")
def key(model):
    names = list(KEY_POSES)
    joints = joints_of(model, np.stack([KEY_POSES[n] for n in names]))
    return {name: joints[i] for i, name in enumerate(names)}


def global_rotations(poses: np.ndarray) -> list[Rotation]:
    """Per SMPL joint, the batch of global rotations for (B, 23, 3) poses (pelvis unrotated)."""
    rotations = [Rotation.identity(len(poses))]
    for j in range(1, 24):
        rotations.append(rotations[SMPL_PARENTS[j]] * Rotation.from_rotvec(poses[:, j - 1]))
    return rotations


def assert_not_hyperextended(poses: np.ndarray, joints: np.ndarray, tol: float = 0.03):
    """Knees bend backward only, elbows forward only, judged from the joint positions in the
    frame of the parent segment (its rest-frame +Z is the front of the thigh / upper arm)."""
    rotations = global_rotations(poses)
    for side in ("left", "right"):
        thigh_front = rotations[J[f"{side}_hip"]].apply([0.0, 0.0, 1.0])
        shank = joints[:, J[f"{side}_ankle"]] - joints[:, J[f"{side}_knee"]]
        assert np.einsum("bi,bi->b", shank, thigh_front).max() < tol, f"{side} knee bends forward"
        arm_front = rotations[J[f"{side}_shoulder"]].apply([0.0, 0.0, 1.0])
        forearm = joints[:, J[f"{side}_wrist"]] - joints[:, J[f"{side}_elbow"]]
        assert np.einsum("bi,bi->b", forearm, arm_front).min() > -tol, f"{side} elbow bends backward"


# --- limits ------------------------------------------------------------------------------------
def test_joint_limits_are_anatomical_boxes():
    deg = np.rad2deg(JOINT_LIMITS)
    assert JOINT_LIMITS.shape == (23, 3, 2) and JOINT_LIMITS.dtype == np.float32
    assert np.all(deg[..., 0] < deg[..., 1])
    assert np.all(deg[..., 0] <= 0) and np.all(deg[..., 1] >= 0)  # the T-pose is allowed
    for side, sign in (("left", -1), ("right", 1)):
        knee, elbow = deg[J[f"{side}_knee"] - 1], deg[J[f"{side}_elbow"] - 1]
        assert knee[0, 0] == 0 and knee[0, 1] == pytest.approx(150)  # flexion only
        assert np.all(np.abs(knee[1:]) <= 10)
        flexion = np.sort(elbow[1] * sign)  # left elbow flexes about -Y, right about +Y
        assert flexion == pytest.approx([0, 150])  # flexion only
    assert np.abs(deg[J["spine1"] - 1]).max() <= 50 and np.abs(deg[J["neck"] - 1]).max() <= 45
    # The right side's limits mirror the left side's.
    low, high = mirror_pose(JOINT_LIMITS[..., 0]), mirror_pose(JOINT_LIMITS[..., 1])
    assert np.array_equal(np.minimum(low, high), JOINT_LIMITS[..., 0])
    assert np.array_equal(np.maximum(low, high), JOINT_LIMITS[..., 1])


def test_clamp_to_limits():
    wild = np.full((23, 3), 3.0, dtype=np.float32)
    clamped = clamp_to_limits(wild)
    assert within_limits(clamped) and not within_limits(wild)
    assert np.allclose(clamped, JOINT_LIMITS[..., 1])


# --- key poses ---------------------------------------------------------------------------------
def test_key_poses_are_complete_and_within_limits():
    assert set(REQUIRED_KEY_POSES) <= set(KEY_POSES)
    for name, pose in KEY_POSES.items():
        assert pose.shape == (23, 3) and pose.dtype == np.float32, name
        assert within_limits(pose), name
        assert np.abs(pose).max() > 0.1, name  # not the T-pose


def test_key_poses_do_not_bend_limbs_backwards(key):
    poses = np.stack(list(KEY_POSES.values()))
    assert_not_hyperextended(poses, np.stack(list(key.values())))


def test_standing_arms_hang_by_the_hips(key):
    j = key["standing"]
    for side in ("left", "right"):
        wrist = j[J[f"{side}_wrist"]]
        assert wrist[1] < j[J[f"{side}_shoulder"], 1] - 0.3
        assert abs(wrist[1] - j[J[f"{side}_hip"], 1]) < 0.15
        assert abs(wrist[0] - j[J[f"{side}_hip"], 0]) < 0.3  # beside the body, not out sideways
    assert j[J["head"], 1] > j[J["neck"], 1] > j[J["pelvis"], 1] > j[J["left_knee"], 1] > j[J["left_ankle"], 1]


def test_sitting_thighs_forward_shanks_down(key):
    j = key["sitting"]
    for side in ("left", "right"):
        hip, knee, ankle = (j[J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        assert knee[2] > hip[2] + 0.3  # thighs forward...
        assert abs(knee[1] - hip[1]) < 0.1  # ...and roughly horizontal
        assert hip[1] > ankle[1] + 0.3  # feet below the seat
        assert abs(ankle[2] - knee[2]) < 0.15  # shanks roughly vertical


def test_arms_raised_above_the_head(key):
    j = key["arms_raised"]
    assert j[J["left_wrist"], 1] > j[J["head"], 1] + 0.15
    assert j[J["right_wrist"], 1] > j[J["head"], 1] + 0.15
    j = key["reaching_up"]
    assert j[J["left_wrist"], 1] > j[J["head"], 1] + 0.15
    assert j[J["right_wrist"], 1] < j[J["right_shoulder"], 1]


@pytest.mark.parametrize("gait", ["walking", "running"])
def test_gait_phases_put_opposite_feet_forward(key, gait):
    a, b = key[f"{gait}_a"], key[f"{gait}_b"]
    ankle_z = lambda j, side: j[J[f"{side}_ankle"], 2]
    wrist_z = lambda j, side: j[J[f"{side}_wrist"], 2]
    assert ankle_z(a, "left") > ankle_z(a, "right") + 0.3
    assert ankle_z(b, "right") > ankle_z(b, "left") + 0.3
    # Arms swing opposite to the legs.
    assert wrist_z(a, "right") > wrist_z(a, "left") + 0.1
    assert wrist_z(b, "left") > wrist_z(b, "right") + 0.1


def test_other_key_poses_look_like_their_names(key):
    y, z = 1, 2
    j = key["crouching"]
    assert j[J["pelvis"], y] - j[J["left_ankle"], y] < 0.45  # low, down from ~0.82 standing
    j = key["reaching_forward"]
    assert j[J["left_wrist"], z] > 0.5 and j[J["right_wrist"], z] > 0.5
    j = key["kicking"]
    assert j[J["left_ankle"], z] > 0.5 and j[J["left_ankle"], y] > j[J["right_knee"], y]
    j = key["waving"]
    assert j[J["right_wrist"], y] > j[J["right_elbow"], y] > j[J["right_shoulder"], y] - 0.05
    assert j[J["right_wrist"], y] > j[J["head"], y]
    j = key["hands_on_hips"]
    for side, sign in (("left", 1), ("right", -1)):
        wrist, hip, elbow = (j[J[f"{side}_{n}"]] for n in ("wrist", "hip", "elbow"))
        assert abs(wrist[y] - hip[y]) < 0.2 and sign * (elbow[0] - wrist[0]) > 0.1  # elbows out
    j = key["lunging"]
    assert j[J["left_knee"], z] > 0.3 and j[J["right_knee"], y] < j[J["pelvis"], y] - 0.35
    j = key["bending_over"]
    assert j[J["head"], y] < j[J["spine3"], y] + 0.1 and j[J["head"], z] > 0.35
    assert j[J["left_wrist"], y] < j[J["left_shoulder"], y] - 0.4  # arms hang towards the floor


@pytest.fixture(scope="module")
def everyday(model):
    names = list(EVERYDAY_POSES)
    joints = joints_of(model, np.stack([EVERYDAY_POSES[n] for n in names]))
    return {name: joints[i] for i, name in enumerate(names)}


def test_everyday_poses_are_within_limits_and_bend_limbs_the_right_way(everyday):
    for name, pose in EVERYDAY_POSES.items():
        assert pose.shape == (23, 3) and pose.dtype == np.float32 and within_limits(pose), name
    assert_not_hyperextended(np.stack(list(EVERYDAY_POSES.values())), np.stack(list(everyday.values())))


def test_everyday_poses_look_like_their_names(everyday):
    x, y, z = 0, 1, 2
    j = everyday["arms_crossed"]
    for side, sign in (("left", 1), ("right", -1)):  # each wrist across the midline, in front of the chest
        wrist = j[J[f"{side}_wrist"]]
        assert -sign * wrist[x] > 0.05 and wrist[z] > j[J["spine3"], z] + 0.1
        assert j[J["pelvis"], y] < wrist[y] < j[J["left_shoulder"], y]
    j = everyday["phoning"]
    assert np.linalg.norm(j[J["left_wrist"]] - j[J["head"]]) < 0.2 and j[J["left_wrist"], x] > 0  # the hand reaches the ear
    assert j[J["left_wrist"], y] > j[J["left_shoulder"], y]
    j = everyday["hand_to_mouth"]
    assert np.linalg.norm(j[J["left_wrist"]] - j[J["head"]]) < 0.25 and j[J["left_wrist"], z] > j[J["head"], z] + 0.1
    j = everyday["hands_behind_back"]
    for side in ("left", "right"):
        assert j[J[f"{side}_wrist"], z] < j[J["pelvis"], z] - 0.1 and abs(j[J[f"{side}_wrist"], x]) < 0.12
    j = everyday["sitting_on_ground"]
    assert j[J["left_ankle"], z] > j[J["left_hip"], z] + 0.6 and abs(j[J["left_ankle"], y] - j[J["left_hip"], y]) < 0.25
    j = everyday["low_sitting_legs_crossed"]
    assert j[J["left_ankle"], x] < j[J["right_ankle"], x] + 0.05  # the shins cross: left foot on the right
    assert j[J["left_knee"], x] > 0.2 and j[J["right_knee"], x] < -0.2
    j = everyday["kneeling"]
    for side in ("left", "right"):  # knees low, shins back along the floor
        assert j[J["pelvis"], y] - j[J[f"{side}_knee"], y] > 0.3
        assert j[J[f"{side}_ankle"], z] < j[J[f"{side}_knee"], z] - 0.3
        assert abs(j[J[f"{side}_ankle"], y] - j[J[f"{side}_knee"], y]) < 0.15
    j = everyday["deep_squat"]
    assert j[J["pelvis"], y] - min(j[J["left_ankle"], y], j[J["right_ankle"], y]) < 0.35
    assert j[J["left_knee"], x] - j[J["right_knee"], x] > 0.35  # knees wide


def test_pose_sets_keep_the_key_set_as_it_was_and_add_the_everyday_poses():
    assert POSE_SETS["key"] is KEY_POSES  # synthetic sets 1-3 re-render frame for frame
    assert set(POSE_SETS["everyday"]) == set(KEY_POSES) | set(EVERYDAY_POSES)
    rng = np.random.default_rng(3)
    seq = sample_sequence(rng, 300, fps=30, poses={n: EVERYDAY_POSES[n] for n in ("kneeling", "phoning")})
    # Keyframes blend only the two given poses (mirrored or not): every knee flexion lies between theirs.
    knee = seq[:, J["left_knee"] - 1, 0]
    span = sorted([EVERYDAY_POSES["kneeling"][J["left_knee"] - 1, 0], EVERYDAY_POSES["phoning"][J["left_knee"] - 1, 0]])
    noise = 0.05 * (JOINT_LIMITS[J["left_knee"] - 1, 0, 1] - JOINT_LIMITS[J["left_knee"] - 1, 0, 0])
    assert (knee > span[0] - 4 * noise).all() and (knee < span[1] + 4 * noise).all()
    assert knee.max() > span[1] - 0.3  # and the kneeling pose is visited
    with pytest.raises(ValueError, match="at least two"):
        sample_sequence(rng, 10, poses={"kneeling": EVERYDAY_POSES["kneeling"]})


def test_mirror_pose_mirrors_the_body(model):
    pose = KEY_POSES["waving"]
    assert np.allclose(mirror_pose(mirror_pose(pose)), pose)
    joints, mirrored = joints_of(model, np.stack([pose, mirror_pose(pose)]))
    reflected = joints[list(SMPL_FLIP_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(mirrored - reflected).max() < 0.01


# --- sampling ----------------------------------------------------------------------------------
def test_sampled_poses_are_plausible(model):
    rng = np.random.default_rng(0)
    poses = np.stack([sample_pose(rng) for _ in range(200)])
    assert poses.shape == (200, 23, 3) and poses.dtype == np.float32
    assert within_limits(poses)
    assert_not_hyperextended(poses, joints_of(model, poses))
    # Varied: many distinct poses, every joint used.
    assert len(np.unique(poses.round(3), axis=0)) == 200
    assert np.all(poses.std(axis=0)[[J[n] - 1 for n in ("left_knee", "left_hip", "right_shoulder")]].max(axis=1) > 0.2)


def test_sample_pose_uses_the_named_key_poses():
    rng = np.random.default_rng(1)
    sitting = KEY_POSES["sitting"]
    for _ in range(10):
        pose = sample_pose(rng, ["sitting"], noise=0.0)
        assert np.allclose(pose, sitting, atol=1e-6) or np.allclose(pose, mirror_pose(sitting), atol=1e-6)


def test_sequences_are_smooth_and_within_limits(model):
    rng = np.random.default_rng(2)
    for _ in range(2):
        seq = sample_sequence(rng, 120, fps=30)
        assert seq.shape == (120, 23, 3) and seq.dtype == np.float32
        assert within_limits(seq)
        joints = joints_of(model, seq)
        step = np.linalg.norm(np.diff(joints, axis=0), axis=-1)
        assert step.max() < 0.10  # metres per frame at 30 fps
        assert np.linalg.norm(joints[-1] - joints[0], axis=-1).max() > 0.1  # it does move
        # No jerks: velocity changes gradually between frames.
        assert np.linalg.norm(np.diff(joints, 2, axis=0), axis=-1).max() < 0.02
        assert_not_hyperextended(seq, joints)
    assert sample_sequence(rng, 1).shape == (1, 23, 3)


def test_random_global_orient_is_mostly_upright_with_any_heading():
    rng = np.random.default_rng(3)
    orients = np.stack([random_global_orient(rng) for _ in range(1000)])
    assert orients.shape == (1000, 3) and orients.dtype == np.float32
    rotations = Rotation.from_rotvec(orients)
    up = rotations.apply([0.0, 1.0, 0.0])
    upright = up[:, 1] > np.cos(np.deg2rad(15))
    assert 0.9 < upright.mean() < 1.0  # a few lie down
    assert (np.abs(up[:, 1]) < 0.5).mean() > 0.01
    front = rotations.apply([0.0, 0.0, 1.0])[upright]
    heading = np.arctan2(front[:, 0], front[:, 2])
    counts = np.histogram(heading, bins=8, range=(-np.pi, np.pi))[0]
    assert counts.min() > 0.5 * counts.mean()  # uniform over the full circle


def test_everything_is_deterministic_per_seed():
    def draw(seed):
        rng = np.random.default_rng(seed)
        return sample_pose(rng), sample_sequence(rng, 40), random_global_orient(rng)

    for a, b in zip(draw(7), draw(7)):
        assert np.array_equal(a, b)
    assert not np.array_equal(draw(7)[0], draw(8)[0])


def test_body_joint_names_match_the_pose_rows():
    assert BODY_JOINT_NAMES == SMPL_JOINT_NAMES[1:] and len(BODY_JOINT_NAMES) == 23
