"""MPII reader on small hand-made files: the official .mat layout and SPIN's .npz."""
import numpy as np
import pytest
from scipy.io import savemat

from pare_demo.body.joint_names import SMPL_JOINT_NAMES
from pare_demo.data.mpii import read_mpii

# Written out independently of the module: SMPL joint <- MPII id, and SMPL joint <- SPIN J24 index.
SMPL_FROM_MPII = {
    "right_ankle": 0, "right_knee": 1, "right_hip": 2, "left_hip": 3, "left_knee": 4,
    "left_ankle": 5, "pelvis": 6, "neck": 8, "right_wrist": 10, "right_elbow": 11,
    "right_shoulder": 12, "left_shoulder": 13, "left_elbow": 14, "left_wrist": 15,
}
SMPL_FROM_SPIN = {
    "right_ankle": 0, "right_knee": 1, "right_hip": 2, "left_hip": 3, "left_knee": 4,
    "left_ankle": 5, "right_wrist": 6, "right_elbow": 7, "right_shoulder": 8,
    "left_shoulder": 9, "left_elbow": 10, "left_wrist": 11, "neck": 12, "pelvis": 14,
}
EMPTY = np.zeros((0, 0))
HINT = "Download MPII Human Pose from http://human-pose.mpi-inf.mpg.de"


def idx(name):
    return SMPL_JOINT_NAMES.index(name)


def struct_array(rows, fields):
    """A MATLAB struct array (savemat writes a dict as a single struct)."""
    out = np.zeros((len(rows),), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        for f in fields:
            out[i][f] = row.get(f, EMPTY)
    return out


def points(entries):
    return struct_array([dict(id=i, x=float(x), y=float(y), is_visible=v) for i, x, y, v in entries],
                        ["id", "x", "y", "is_visible"])


def write_mat(path):
    # Image a.jpg (train): person 0 fully annotated (r knee occluded as int 0, l knee with
    # is_visible missing, some flags as strings), person 1 without annopoints, person 2 with
    # four joints and no objpos/scale.
    full = [(i, 10 + i, 100 + i, "1" if i % 2 else 1) for i in range(16)]
    full[1] = (1, 11, 101, 0)
    full[4] = (4, 14, 104, EMPTY)
    rects_a = struct_array([
        dict(annopoints={"point": points(full)}, objpos={"x": 100.0, "y": 200.0}, scale=1.5),
        dict(objpos={"x": 300.0, "y": 200.0}, scale=1.0),
        dict(annopoints={"point": points([(0, 40, 300, 1), (8, 60, 100, 1), (9, 50, 80, 1),
                                          (7, 55, 120, 1)])}),
    ], ["annopoints", "objpos", "scale"])
    # Image b.jpg (test): a single person (a struct, not an array) with a single point.
    rect_b = dict(annopoints={"point": {"id": 15, "x": 7.0, "y": 8.0, "is_visible": "1"}},
                  objpos={"x": 5.0, "y": 5.0}, scale=0.5)
    annolist = struct_array([dict(image={"name": "a.jpg"}, annorect=rects_a),
                             dict(image={"name": "b.jpg"}, annorect=rect_b)], ["image", "annorect"])
    release = {"annolist": annolist, "img_train": np.array([1, 0]),
               "single_person": np.array([EMPTY, 1], dtype=object), "act": struct_array([{}, {}], ["act_name"])}
    savemat(path, {"RELEASE": release})


def write_npz(path):
    part = np.zeros((3, 24, 3))
    part[:, :, 0] = 1000 + np.arange(24)
    part[:, :, 1] = 2000 + np.arange(24)
    part[:, :, 2] = 1
    part[1, 11, 2] = 0  # left wrist not annotated in row 1
    np.savez(path, imgname=np.array(["images/x.jpg", "images/x.jpg", "images/y.jpg"]),
             center=np.array([[100.0, 150.0], [10.0, 20.0], [0.0, 0.0]]), scale=np.array([2.0, 0.5, 1.0]),
             part=part)


@pytest.fixture
def root(tmp_path):
    (tmp_path / "images").mkdir()
    return tmp_path


def test_mat_train_split_joints_and_boxes(root):
    write_mat(root / "mpii_human_pose_v1_u12_1.mat")
    samples = read_mpii(root)
    a = root / "images" / "a.jpg"
    assert [(s.image_path, s.person) for s in samples] == [(a, 0), (a, 2)]

    full = samples[0]
    assert full.joints2d.shape == (24, 2) and full.joints2d_visible.dtype == bool
    for name, m in SMPL_FROM_MPII.items():
        np.testing.assert_allclose(full.joints2d[idx(name)], [10 + m, 100 + m])
    # Occluded (0) and unflagged joints are still annotated positions.
    assert set(np.flatnonzero(full.joints2d_visible)) == {idx(n) for n in SMPL_FROM_MPII}
    assert not full.joints2d[~full.joints2d_visible].any()
    np.testing.assert_allclose(full.bbox, [100 - 150, 200 - 150, 100 + 150, 200 + 150])
    assert full.pose is None and full.betas is None and not full.valid_3d and full.sequence == "mpii"

    partial = samples[1]
    assert set(np.flatnonzero(partial.joints2d_visible)) == {idx("right_ankle"), idx("neck")}
    np.testing.assert_allclose(partial.joints2d[idx("neck")], [60, 100])
    # No objpos/scale: the box of all four joints (head top and thorax included), 20% larger.
    np.testing.assert_allclose(partial.bbox, [50 - 12, 190 - 132, 50 + 12, 190 + 132])


def test_mat_test_split_and_occlusion(root):
    path = root / "annotations.mat"
    write_mat(path)
    (only,) = read_mpii(root, path, split="test")
    assert only.image_path == root / "images/b.jpg" and only.person == 0
    assert np.flatnonzero(only.joints2d_visible).tolist() == [idx("left_wrist")]
    np.testing.assert_allclose(only.joints2d[idx("left_wrist")], [7, 8])
    np.testing.assert_allclose(only.bbox, [-45, -45, 55, 55])
    assert len(read_mpii(root, path, split="all")) == 3

    strict = read_mpii(root, path, drop_occluded=True)[0]
    assert not strict.joints2d_visible[[idx("right_knee"), idx("left_knee")]].any()
    assert strict.joints2d_visible.sum() == len(SMPL_FROM_MPII) - 2


def test_npz_spin_layout(root):
    write_npz(root / "mpii_train.npz")
    samples = read_mpii(root)
    assert [(s.image_path.name, s.person) for s in samples] == [("x.jpg", 0), ("x.jpg", 1), ("y.jpg", 0)]
    for name, j in SMPL_FROM_SPIN.items():
        np.testing.assert_allclose(samples[0].joints2d[idx(name)], [1000 + j, 2000 + j])
    assert set(np.flatnonzero(samples[0].joints2d_visible)) == {idx(n) for n in SMPL_FROM_SPIN}
    assert not samples[0].joints2d[~samples[0].joints2d_visible].any()
    assert not samples[1].joints2d_visible[idx("left_wrist")] and samples[1].joints2d_visible.sum() == 13
    np.testing.assert_allclose(samples[0].bbox, [-100, -50, 300, 350])
    np.testing.assert_allclose(samples[1].bbox, [-40, -30, 60, 70])
    assert samples[0].image_path == root / "images" / "x.jpg" and not samples[0].valid_3d


def test_default_prefers_mat(root):
    write_mat(root / "mpii_human_pose_v1_u12_1.mat")
    write_npz(root / "mpii_train.npz")
    assert len(read_mpii(root)) == 2


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=HINT) as err:
        read_mpii(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    with pytest.raises(FileNotFoundError, match=HINT) as err:
        read_mpii(tmp_path, tmp_path / "missing.mat")
    assert str(tmp_path / "missing.mat") in str(err.value)
    with pytest.raises(FileNotFoundError, match="mpii_train.npz") as err:
        read_mpii(tmp_path)
    assert "Your own files" in str(err.value)
