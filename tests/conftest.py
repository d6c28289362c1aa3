import os
import pickle
from pathlib import Path

import pytest
import torch

# Keep every cache the code writes inside the test session.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    os.environ["PARE_CACHE_DIR"] = str(tmp_path_factory.mktemp("pare_cache"))
    torch.set_num_threads(2)


def _untrained_model(**head_options):
    """A seeded, untrained fast-backbone PARE with a camera scale near 1, so the body lands in
    front of the camera."""
    from pare_demo.models import PARE, default_config

    torch.manual_seed(0)
    model = PARE(default_config("mobilenetv3", **head_options))
    with torch.no_grad():
        model.head.cam_regressor.weight.mul_(0.01)
        model.head.cam_regressor.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
    return model


def _save_untrained(model, folder, name):
    from pare_demo.checkpoints import save_checkpoint

    return save_checkpoint(folder / name, model.config.to_dict(), model.state_dict(), {"note": "untrained"})


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A seeded, untrained fast-backbone PARE checkpoint: real code paths, meaningless weights."""
    return _save_untrained(_untrained_model(), tmp_path_factory.mktemp("ckpt"), "small.pt")


@pytest.fixture(scope="session")
def skeleton_checkpoint(tmp_path_factory):
    """Like small_checkpoint, with the skeleton MLP switched on and given random weights,
    so its correction to the pose is not zero."""
    model = _untrained_model(skeleton_hidden=16)
    with torch.no_grad():
        model.head.skeleton_mlp[-1].weight.normal_(0, 0.1)
    return _save_untrained(model, tmp_path_factory.mktemp("ckpt"), "skeleton.pt")


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="session")
def hostile_checkpoints(tmp_path_factory):
    """(files, marker): a checkpoint whose unpickling would run a shell command that creates
    `marker`, written by torch.save and as a plain pickle, as torch.load sees both."""
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "ran"
    payload = {"format": "pare-demo-checkpoint", "version": 1, "config": _RunsAShellCommand(marker),
               "state_dict": {}}
    torch.save(payload, folder / "hostile.pt")
    (folder / "hostile.pkl").write_bytes(pickle.dumps(payload, protocol=2))
    return [folder / "hostile.pt", folder / "hostile.pkl"], marker


@pytest.fixture(scope="session")
def malformed_checkpoints(small_checkpoint, tmp_path_factory):
    """(file, what its error must say) for harmless checkpoints that are wrong in one way each."""
    from pare_demo.checkpoints import load_checkpoint

    good = load_checkpoint(small_checkpoint)
    base = {"format": "pare-demo-checkpoint", "version": 1, **good}
    cases = {
        "no_config": ({k: v for k, v in base.items() if k != "config"}, "it has no 'config'"),
        "version_text": ({**base, "version": "1"}, "format version is '1', not a whole number"),
        "unknown_backbone": ({**base, "config": {**good["config"], "backbone": "vgg99"}}, "Unknown backbone 'vgg99'"),
        "config_text": ({**base, "config": "mobilenetv3"}, "'config' is a str, not a dict"),
        "state_dict_list": ({**base, "state_dict": list(good["state_dict"].values())},
                            "'state_dict' is a list, not a dict"),
        "state_dict_text": ({**base, "state_dict": {"head.x": "weights"}}, "not named tensors .*'head.x'"),
        "meta_list": ({**base, "meta": ["trained"]}, "'meta' is a list, not a dict"),
    }
    folder = tmp_path_factory.mktemp("malformed")
    for name, (payload, _) in cases.items():
        torch.save(payload, folder / f"{name}.pt")
    return [(folder / f"{name}.pt", reason) for name, (_, reason) in cases.items()]


MALE_SCALE, FEMALE_SCALE = 1.1, 0.9  # gendered_smpl_dir's models against the open one
FEMALE_FILE = "basicModel_f_lbs_10_207_0_v1.0.0.pkl"  # the SMPL v1.0.0 release's name


@pytest.fixture
def gendered_smpl_dir(tmp_path, monkeypatch):
    """$PARE_SMPL_DIR naming a folder of stand-ins for SMPL's male and female models, made
    from the open model's arrays with its template scaled (so which one posed a body shows
    in its vertices): SMPL_MALE.npz (MALE_SCALE) and a plain pickle under the v1.0.0
    release's female name (FEMALE_SCALE). No neutral SMPL; the repository's SMPL folder is
    left out of the search."""
    import numpy as np

    from pare_demo import paths
    from pare_demo.body.model import SMPL_KEYS

    with np.load(paths.OPEN_BODY_MODEL_FILE) as data:
        arrays = {k: data[k] for k in SMPL_KEYS}
    folder = tmp_path / "smpl_gendered"
    folder.mkdir()
    np.savez(folder / "SMPL_MALE.npz", **{**arrays, "v_template": arrays["v_template"] * MALE_SCALE})
    with open(folder / FEMALE_FILE, "wb") as f:
        pickle.dump({**arrays, "v_template": arrays["v_template"] * FEMALE_SCALE}, f, protocol=2)
    monkeypatch.setenv("PARE_SMPL_DIR", str(folder))
    monkeypatch.setattr(paths, "SMPL_DIR", tmp_path / "no_smpl_here")
    return folder


@pytest.fixture(scope="session")
def renderer():
    """One headless GL renderer for the whole session, as the app keeps one."""
    from pare_demo.render import Renderer

    r = Renderer()
    yield r
    r.close()


# Where `make test` extracts MediaPipe's two BlazePose .tflite files (from the mediapipe
# wheel on PyPI) for the equivalence tests; $PARE_MEDIAPIPE_DIR may name another folder.
MEDIAPIPE_DIR = Path(__file__).resolve().parent.parent / ".venv" / "mediapipe-0.10.14"


@pytest.fixture(scope="session")
def mediapipe_tflite_dir() -> Path:
    """A folder holding pose_detection.tflite and pose_landmark_full.tflite, or a skip."""
    folder = Path(os.environ.get("PARE_MEDIAPIPE_DIR") or MEDIAPIPE_DIR)
    needed = [folder / "pose_detection.tflite", folder / "pose_landmark_full.tflite"]
    if not all(p.is_file() for p in needed):
        pytest.skip(f"MediaPipe's .tflite files are not in {folder} (`make test` extracts them)")
    return folder


@pytest.fixture(scope="session")
def litert_interpreter():
    """ai-edge-litert's Interpreter class (the reference runtime for .tflite files), or a skip."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    return litert.Interpreter
