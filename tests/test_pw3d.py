import pickle
import struct

import numpy as np
import pytest
import torch

from pare_demo.body import load_body_model
from pare_demo.data.pw3d import project, read_pw3d, to_camera_frame


class Py2Pickler(pickle._Pickler):
    """Writes bytes as python 2 `str` (BINSTRING), as the 3DPW files were written."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


@pytest.fixture(scope="module")
def body_model():
    return load_body_model("open")


def make_sequence(body_model, frames=4, people=2):
    rng = np.random.default_rng(3)
    poses = [rng.normal(0, 0.2, (frames, 72)) for _ in range(people)]
    trans = [rng.normal(0, 0.3, (frames, 3)) + [0.8 * k, 0, 0] for k in range(people)]
    betas = [rng.normal(0, 1, 10) for _ in range(people)]
    joints = []
    for p, t, b in zip(poses, trans, betas):
        with torch.no_grad():
            out = body_model(betas=torch.tensor(np.repeat(b[None], frames, 0), dtype=torch.float32),
                             global_orient=torch.tensor(p[:, :3], dtype=torch.float32),
                             body_pose=torch.tensor(p[:, 3:], dtype=torch.float32),
                             transl=torch.tensor(t, dtype=torch.float32))
        joints.append(out.joints[:, :24].reshape(frames, 72).double().numpy())
    angle = 0.3
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    rot = rot @ np.diag([1.0, -1.0, -1.0])  # camera y down, looking at the people from their front
    cam = np.tile(np.eye(4), (frames, 1, 1))
    cam[:, :3, :3] = rot
    cam[:, :3, 3] = [0.2, 0.1, 5.0]
    valid = [np.ones(frames, bool), np.array([True, False, True, True])[:frames]]
    return {
        "sequence": "downtown_fixture_00", "genders": ["m", "f"][:people], "betas": betas,
        "poses": poses, "trans": trans, "cam_poses": cam,
        "cam_intrinsics": np.array([[1500.0, 0, 540], [0, 1500.0, 960], [0, 0, 1]]),
        "poses2d": [np.zeros((frames, 3, 18)) for _ in range(people)], "jointPositions": joints,
        "campose_valid": valid[:people], "img_frame_ids": np.arange(10, 10 + frames),
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, body_model):
    root = tmp_path_factory.mktemp("3dpw")
    (root / "sequenceFiles" / "test").mkdir(parents=True)
    seq = make_sequence(body_model)
    with open(root / "sequenceFiles" / "test" / "downtown_fixture_00.pkl", "wb") as f:
        Py2Pickler(f, protocol=2).dump(seq)
    return root, seq


def test_python2_pickle_is_read(dataset):
    root, seq = dataset
    raw = (root / "sequenceFiles" / "test" / "downtown_fixture_00.pkl").read_bytes()
    assert pickle.BINSTRING in raw and b"_codecs" not in raw  # really python-2 style
    samples = read_pw3d(root, "test")
    assert len(samples) == 2 * 4
    s = samples[5]  # second person, second frame
    assert s.person == 1 and s.frame == 11 and s.gender == "female"
    assert s.image_path == root / "imageFiles" / "downtown_fixture_00" / "image_00011.jpg"
    assert np.allclose(s.pose, seq["poses"][1][1]) and np.allclose(s.betas, seq["betas"][1])
    assert not s.valid_3d and not s.joints2d_visible.any()  # campose_valid False for that frame
    assert samples[4].valid_3d and samples[4].joints2d_visible.all()


def test_joints2d_and_box_come_from_the_projected_joints(dataset):
    root, seq = dataset
    s = read_pw3d(root, "test")[2]
    joints = seq["jointPositions"][0][2].reshape(24, 3)
    cam = joints @ seq["cam_poses"][2][:3, :3].T + seq["cam_poses"][2][:3, 3]
    expected = 1500 * cam[:, :2] / cam[:, 2:3] + [540, 960]
    assert np.allclose(s.joints2d, expected)
    assert (s.bbox[:2] <= s.joints2d.min(0)).all() and (s.bbox[2:] >= s.joints2d.max(0)).all()
    assert np.allclose(project(joints, s.camera_extrinsics, seq["cam_intrinsics"]), expected)


def test_camera_frame_parameters_reproduce_the_joints(dataset, body_model):
    root, seq = dataset
    for s in read_pw3d(root, "test"):
        with torch.no_grad():
            rest = body_model(betas=torch.tensor(s.betas[None], dtype=torch.float32))
        j0 = rest.joints[0, 0].double().numpy()
        pose, transl = to_camera_frame(s, j0)
        with torch.no_grad():
            out = body_model(betas=torch.tensor(s.betas[None], dtype=torch.float32),
                             global_orient=torch.tensor(pose[None, :3], dtype=torch.float32),
                             body_pose=torch.tensor(pose[None, 3:], dtype=torch.float32),
                             transl=torch.tensor(transl[None], dtype=torch.float32))
        expected = s.joints3d @ s.camera_extrinsics[:3, :3].T + s.camera_extrinsics[:3, 3]
        assert np.abs(out.joints[0, :24].numpy() - expected).max() < 1e-4


def test_missing_dataset_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="virtualhumans.mpi-inf.mpg.de/3DPW"):
        read_pw3d(tmp_path / "nope", "test")
    with pytest.raises(FileNotFoundError, match="sequenceFiles/test"):
        read_pw3d(tmp_path, "test")
