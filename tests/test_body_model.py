import math
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch

from pare_demo import paths
from pare_demo.body import SMPL_JOINT_NAMES, BodyModelError, load_body_model
from pare_demo.body.joint_names import EVAL_JOINT_NAMES, EXTRA_KEYPOINT_NAMES
from pare_demo.geometry import axis_angle_to_rotmat

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES + EXTRA_KEYPOINT_NAMES)}


@pytest.fixture(scope="module")
def open_model():
    return load_body_model("open")


@pytest.fixture(scope="module")
def rest(open_model):
    with torch.no_grad():
        return open_model(betas=torch.zeros(1, 10), body_pose=torch.zeros(1, 69),
                          global_orient=torch.zeros(1, 3))


def body_pose_with(joint: str, axis_angle) -> torch.Tensor:
    pose = torch.zeros(1, 69)
    i = SMPL_JOINT_NAMES.index(joint) - 1
    pose[0, 3 * i:3 * i + 3] = torch.tensor(axis_angle)
    return pose


def height(vertices: torch.Tensor) -> float:
    return (vertices[0, :, 1].max() - vertices[0, :, 1].min()).item()


def test_is_an_smplx_model_with_24_joints_plus_keypoints(open_model, rest):
    assert isinstance(open_model, smplx.SMPL)
    assert rest.vertices.shape == (1, 13348, 3)
    assert rest.joints.shape == (1, 24 + 21, 3)
    assert open_model.faces.shape == (26692, 3)
    assert list(open_model.parents[:24].tolist()) == [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9,
                                                      12, 13, 14, 16, 17, 18, 19, 20, 21]


def test_t_pose_follows_smpl_axes(rest):
    j = rest.joints[0]
    assert j[J["pelvis"]].norm() < 0.01  # pelvis at the origin
    assert j[J["head"], 1] > j[J["neck"], 1] > j[J["pelvis"], 1] > j[J["left_knee"], 1] > j[J["left_ankle"], 1]
    assert j[J["left_wrist"], 0] > 0.5 and j[J["right_wrist"], 0] < -0.5  # left side at +X
    for side in ("left", "right"):  # arms horizontal
        shoulder, elbow, wrist = (j[J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
        assert abs(wrist[1] - shoulder[1]) < 0.02 and abs(elbow[1] - shoulder[1]) < 0.02
    assert j[J["nose"], 2] > j[J["head"], 2] + 0.05  # faces +Z
    assert j[J["LBigToe"], 2] > j[J["LHeel"], 2] + 0.15
    assert j[J["leye"], 0] > 0 > j[J["reye"], 0]
    assert j[J["lthumb"], 0] > j[J["left_wrist"], 0] and j[J["rmiddle"], 0] < j[J["right_hand"], 0]


def test_mean_body_height_is_adult(rest):
    assert 1.60 <= height(rest.vertices) <= 1.80


def test_bending_left_elbow_moves_only_the_forearm(open_model, rest):
    with torch.no_grad():
        bent = open_model(body_pose=body_pose_with("left_elbow", [0.0, -math.pi / 2, 0.0]))
    moved = (bent.joints - rest.joints)[0].norm(dim=-1)
    assert moved[J["left_wrist"]] > 0.15
    for unmoved in ("left_shoulder", "right_shoulder", "left_elbow", "right_wrist", "head"):
        assert moved[J[unmoved]] < 1e-5
    # Rotation matrices through smplx's pose2rot=False give the same body.
    rotmats = axis_angle_to_rotmat(torch.cat([torch.zeros(1, 3), body_pose_with(
        "left_elbow", [0.0, -math.pi / 2, 0.0])], dim=1).reshape(24, 3))[None]
    with torch.no_grad():
        same = open_model(global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:], pose2rot=False)
    assert torch.allclose(same.vertices, bent.vertices, atol=1e-5)


def test_first_shape_component_changes_height(open_model, rest):
    with torch.no_grad():
        tall = open_model(betas=torch.tensor([[2.0] + [0.0] * 9]))
        short = open_model(betas=torch.tensor([[-2.0] + [0.0] * 9]))
    assert height(tall.vertices) - height(rest.vertices) > 0.10
    assert height(rest.vertices) - height(short.vertices) > 0.10


def test_regressed_joints_match_the_rig_over_shapes(open_model):
    """Bodies held out of the build, expressed as betas, against anny's own joints for them."""
    with np.load(paths.OPEN_BODY_MODEL_FILE) as data:
        betas = torch.from_numpy(data["rig_check_betas"])
        rig_joints = torch.from_numpy(data["rig_check_joints"])
    assert betas.shape == (16, 10) and betas.abs().max() > 0.5  # varied shapes
    with torch.no_grad():
        joints = open_model(betas=betas, body_pose=torch.zeros(16, 69),
                            global_orient=torch.zeros(16, 3)).joints[:, :24]
    error = (joints - rig_joints).norm(dim=-1)
    assert error.max() < 0.01, f"worst joint {error.max():.4f} m"


def test_part_labels_and_eval_regressor(open_model, rest):
    labels = open_model.part_labels
    assert labels.shape == (13348,) and set(labels.tolist()) == set(range(24))
    left_hand = rest.vertices[0, labels == SMPL_JOINT_NAMES.index("left_hand")]
    assert left_hand[:, 0].min() > 0.6
    reg = open_model.eval_regressor
    assert reg.shape == (14, 13348) and torch.allclose(reg.sum(1), torch.ones(14), atol=1e-5)
    assert (reg >= 0).all()
    eval_joints = open_model.eval_joints(rest.vertices)[0]
    named = dict(zip(EVAL_JOINT_NAMES, eval_joints))
    assert named["head_top"][1] >= rest.vertices[0, :, 1].max() - 1e-6
    for name in ("left_ankle", "right_knee", "left_wrist", "right_shoulder", "neck"):
        assert (named[name] - rest.joints[0, J[name]]).norm() < 0.03


# ---------------------------------------------------------------- SMPL pickles
class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as python 2 wrote it: text and bytes both as python 2's str (SHORT_BINSTRING,
    BINSTRING), where python 3 writes unicode text and _codecs.encode calls. Module names get
    python 2's spelling from fix_imports (__builtin__, copy_reg)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_python2_str


def _write_chumpy_pickle(path, arrays, monkeypatch):
    """An SMPL-style python-2 pickle: chumpy Ch objects, a sparse J_regressor.
    A stand-in chumpy.ch.Ch class lives in a temporary module while pickling."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        """What chumpy's Ch(x) holds: the array and its bookkeeping."""

        def __init__(self, x):
            self._dirty_vars = {"x"}
            self._itr = None
            self._make_dense = False
            self._make_sparse = False
            self._depends_on_deps = {}
            self.x = x
            self._parents, self._cache = {}, {"r": None, "drs": {}}

        def __getstate__(self):  # as chumpy's: all but the two caches
            state = dict(self.__dict__)
            del state["_parents"], state["_cache"]
            return state

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    data = {
        "v_template": Ch(arrays["v_template"].astype(np.float64)),
        "shapedirs": Ch(np.concatenate([arrays["shapedirs"]] * 3, axis=2)),  # 30 components
        "posedirs": arrays["posedirs"],
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"].astype(np.float64)),
        "weights": Ch(arrays["weights"]),
        "kintree_table": arrays["kintree_table"],
        "f": arrays["f"].astype(np.uint32),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    with open(path, "wb") as f:
        _Python2Pickler(f, protocol=2).dump(data)
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")


@pytest.fixture
def smpl_like_pickle(tmp_path, monkeypatch):
    monkeypatch.setenv("PARE_CACHE_DIR", str(tmp_path / "cache"))
    with np.load(paths.OPEN_BODY_MODEL_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    folder = tmp_path / "smpl"
    folder.mkdir()
    _write_chumpy_pickle(folder / "SMPL_NEUTRAL.pkl", arrays, monkeypatch)
    return folder


def test_chumpy_pickle_loads_without_chumpy(smpl_like_pickle, monkeypatch, open_model):
    raw = (smpl_like_pickle / "SMPL_NEUTRAL.pkl").read_bytes()
    assert b"c__builtin__\nset\n" in raw and b"_codecs" not in raw  # written as python 2 does
    assert "chumpy" not in sys.modules
    monkeypatch.setenv("PARE_SMPL_DIR", str(smpl_like_pickle))
    model = load_body_model("smpl")
    assert model.model_name == "smpl"
    generator = torch.Generator().manual_seed(7)
    pose = 0.5 * torch.randn(2, 72, generator=generator)
    betas = torch.randn(2, 10, generator=generator)
    with torch.no_grad():
        out = model(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
        expected = open_model(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
    torch.testing.assert_close(out.vertices, expected.vertices, rtol=0, atol=1e-5)
    # Converted once, then read from the cache.
    cached = list((smpl_like_pickle.parent / "cache" / "body_models").glob("SMPL_NEUTRAL-*.npz"))
    assert len(cached) == 1
    # Part labels from the weights, eval regressor derived from the SMPL joint rows.
    assert model.part_labels.shape == (13348,)
    assert model.eval_regressor.shape == (14, 13348)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}))
    with pytest.raises(BodyModelError, match="builtins.print"):
        load_body_model(path)


@pytest.mark.parametrize("call, args", [(eval, ("1",)), (getattr, (object, "mro")), (os.system, ("true",))])
def test_python2_names_of_callables_are_still_refused(tmp_path, call, args):
    class Evil:
        def __reduce__(self):
            return (call, args)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": {"x", Evil()}}, protocol=2))  # inside an allowed set
    module = "__builtin__" if call.__module__ == "builtins" else call.__module__
    assert f"c{module}\n{call.__name__}\n".encode() in path.read_bytes()
    with pytest.raises(BodyModelError, match=f"refusing to load {module}.{call.__name__}"):
        load_body_model(path)


def test_missing_smpl_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PARE_SMPL_DIR", str(tmp_path))
    with pytest.raises(BodyModelError) as err:
        load_body_model("smpl")
    message = str(err.value)
    assert str(tmp_path) in message and "smpl.is.tue.mpg.de" in message
    assert "SMPL_NEUTRAL.pkl" in message and "PARE_SMPL_DIR" in message


def test_missing_and_corrupt_files_give_one_clear_error(tmp_path):
    with pytest.raises(BodyModelError, match="does not exist"):
        load_body_model(tmp_path / "nope.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(paths.OPEN_BODY_MODEL_FILE.read_bytes()[:5000])
    with pytest.raises(BodyModelError, match="truncated.npz"):
        load_body_model(truncated)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, something=np.zeros(3))
    with pytest.raises(BodyModelError, match="lacks v_template"):
        load_body_model(wrong)


def test_mesh_is_closed_and_well_formed(open_model, rest):
    import trimesh

    mesh = trimesh.Trimesh(rest.vertices[0].numpy(), open_model.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0.03  # outward normals, and an adult's volume (m^3)
    assert mesh.area_faces.min() > 1e-9  # no degenerate triangle
    # On the torso, normals point away from the vertical axis through the pelvis.
    centers = mesh.triangles_center
    outward = (mesh.face_normals * (centers * [1, 0, 1])).sum(1) > 0
    torso = (np.abs(centers[:, 0]) < 0.12) & (centers[:, 1] > 0.0) & (centers[:, 1] < 0.4)
    assert outward[torso].mean() > 0.95


def test_zero_pose_blend_shapes_are_skipped_without_changing_the_body(open_model):
    from smplx.utils import Struct

    from pare_demo.body.model import SMPL_KEYS

    with np.load(paths.OPEN_BODY_MODEL_FILE) as data:
        arrays = {k: data[k] for k in SMPL_KEYS}
    assert not arrays["posedirs"].any()
    reference = smplx.SMPL(model_path=str(paths.OPEN_BODY_MODEL_FILE), data_struct=Struct(**arrays), num_betas=10)
    assert reference.posedirs.shape[1] == 3 * arrays["v_template"].shape[0]
    assert open_model.posedirs.shape == (reference.posedirs.shape[0], 3)

    generator = torch.Generator().manual_seed(3)
    pose = 0.4 * torch.randn(4, 72, generator=generator)
    betas = torch.randn(4, 10, generator=generator)
    with torch.no_grad():
        ours = open_model(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
        theirs = reference(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
    torch.testing.assert_close(ours.vertices, theirs.vertices, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.joints[:, :24], theirs.joints[:, :24], rtol=0, atol=1e-6)


def test_state_saved_with_the_full_zero_pose_blend_shapes_still_loads(open_model):
    # Training checkpoints written before the trim hold the (207, V*3) zeros.
    state = {k: v.clone() for k, v in open_model.state_dict().items()}
    state["posedirs"] = torch.zeros(open_model.posedirs.shape[0], 3 * open_model.v_template.shape[0])
    fresh = load_body_model("open")
    fresh.load_state_dict(state)
    assert fresh.posedirs.shape == open_model.posedirs.shape

    state["posedirs"][0, 0] = 1.0  # real pose blend shapes are not thrown away silently
    with pytest.raises(RuntimeError, match="posedirs"):
        fresh.load_state_dict(state)


def test_smpl_s_gendered_models_are_found_where_the_neutral_one_is_looked_for(gendered_smpl_dir, monkeypatch,
                                                                              open_model, rest):
    from conftest import FEMALE_FILE, FEMALE_SCALE, MALE_SCALE

    from pare_demo.body.model import find_gendered_smpl_files, load_gendered_models

    male, female = gendered_smpl_dir / "SMPL_MALE.npz", gendered_smpl_dir / FEMALE_FILE
    assert find_gendered_smpl_files() == {"male": male, "female": female}
    models = load_gendered_models()
    assert {g: m.label for g, m in models.items()} == {"male": "SMPL_MALE.npz", "female": FEMALE_FILE}
    assert open_model.label == "open"
    with torch.no_grad():  # at rest, each is its own file's template: the open model's, scaled
        for gender, scale in (("male", MALE_SCALE), ("female", FEMALE_SCALE)):
            torch.testing.assert_close(models[gender](betas=torch.zeros(1, 10)).vertices, scale * rest.vertices,
                                       rtol=0, atol=1e-5)
    # $PARE_SMPL_DIR naming the neutral model's file: its folder is searched.
    neutral = gendered_smpl_dir / "SMPL_NEUTRAL.npz"
    neutral.write_bytes(paths.OPEN_BODY_MODEL_FILE.read_bytes())
    monkeypatch.setenv("PARE_SMPL_DIR", str(neutral))
    assert find_gendered_smpl_files() == {"male": male, "female": female}
    female.unlink()
    assert list(load_gendered_models()) == ["male"]
    monkeypatch.setenv("PARE_SMPL_DIR", str(gendered_smpl_dir / "elsewhere"))
    assert find_gendered_smpl_files() == {} and load_gendered_models() == {}


def test_posed_takes_rotation_matrices_with_the_global_orientation_first(open_model):
    """posed(R, betas) is smplx's forward with joint 0 as global_orient and the rest as the
    body pose, all as matrices: a turned pelvis turns the whole body about the root."""
    from pare_demo.geometry import axis_angle_to_rotmat

    rotations = torch.eye(3).repeat(2, 24, 1, 1)
    rotations[1, 0] = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, 0.5]))
    rotations[:, 18] = axis_angle_to_rotmat(torch.tensor([0.3, 0.2, -0.1]))  # the left elbow bent
    betas = torch.zeros(2, 10)
    out = open_model.posed(rotations, betas)
    aa = torch.zeros(2, 72)
    aa[1, 2] = 0.5
    aa[:, 54:57] = torch.tensor([0.3, 0.2, -0.1])
    reference = open_model(betas=betas, global_orient=aa[:, :3], body_pose=aa[:, 3:])
    torch.testing.assert_close(out.vertices, reference.vertices, atol=1e-5, rtol=1e-5)
    root = out.joints[:, :1]
    turned = (out.joints[0] - root[0]) @ rotations[1, 0].T + root[1]
    torch.testing.assert_close(out.joints[1], turned, atol=1e-5, rtol=1e-5)
