"""Load a SMPL-format body model (the open one, SMPL, or any file) as an smplx.SMPL."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from pare_demo import paths
from pare_demo.body.joint_names import (
    EVAL_JOINT_NAMES, EXTRA_KEYPOINT_NAMES, H36M_TO_EVAL, SMPL_JOINT_NAMES,
)
from pare_demo.body.smpl_pickle import read_smpl_pickle

# Keys smplx reads from a SMPL-format file.
SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
SMPL_FILE_NAMES = ("SMPL_NEUTRAL.npz", "SMPL_NEUTRAL.pkl", "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
                   "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl")
# SMPL's male and female models, looked for in the same folders: 3DPW's ground truth is
# posed with them (load_gendered_models).
SMPL_GENDERED_FILE_NAMES = {
    "male": ("SMPL_MALE.npz", "SMPL_MALE.pkl", "basicmodel_m_lbs_10_207_0_v1.1.0.pkl",
             "basicModel_m_lbs_10_207_0_v1.0.0.pkl"),
    "female": ("SMPL_FEMALE.npz", "SMPL_FEMALE.pkl", "basicmodel_f_lbs_10_207_0_v1.1.0.pkl",
               "basicModel_f_lbs_10_207_0_v1.0.0.pkl"),
}
H36M_REGRESSOR_FILE = "J_regressor_h36m.npy"
SMPL_HELP = ("Register at https://smpl.is.tue.mpg.de, download the neutral SMPL model "
             f"and put SMPL_NEUTRAL.pkl in {paths.SMPL_DIR} or in the folder named by "
             f"the environment variable {paths.SMPL_DIR_ENV} (see README, 'Your own files').")


class BodyModelError(RuntimeError):
    """A body model file is missing or unreadable; the message says where and what to do."""


class BodyModel(smplx.SMPL):
    """smplx.SMPL with what pare-demo needs beside it: the joint names, a per-vertex part
    label (24 parts) and the 14-joint evaluation regressor used for 3DPW metrics."""

    joint_names = SMPL_JOINT_NAMES + EXTRA_KEYPOINT_NAMES
    eval_joint_names = EVAL_JOINT_NAMES

    def __init__(self, arrays: dict[str, np.ndarray], name: str, source: Path,
                 vertex_ids: dict[str, int], eval_regressor: np.ndarray,
                 part_labels: np.ndarray, **smplx_kwargs):
        struct = Struct(**{k: arrays[k] for k in SMPL_KEYS})
        # smplx prints a warning for every model with exactly 10 shape components.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(model_path=str(source), data_struct=struct, num_betas=10,
                             vertex_ids=vertex_ids, **smplx_kwargs)
        self.model_name = name
        self.source = Path(source)
        if not self.posedirs.any():
            # The open model has no pose blend shapes, yet smplx would still multiply the
            # (207, V*3) zeros: most of the body model's time. A (207, 3) block of zeros gives
            # the same (B, 1, 3) zero offset, broadcast over the vertices.
            self.posedirs = self.posedirs[:, :3].clone()
        self.register_buffer("eval_regressor", torch.as_tensor(eval_regressor, dtype=torch.float32))
        self.register_buffer("part_labels", torch.as_tensor(part_labels, dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Saved state (training checkpoints hold the body model) may carry the full block of
        # zero pose blend shapes that __init__ trims.
        key = prefix + "posedirs"
        stored = state_dict.get(key)
        if stored is not None and stored.shape != self.posedirs.shape and not stored.any():
            state_dict[key] = stored[:, :self.posedirs.shape[1]]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def label(self) -> str:
        """How downloads and reports name this model: "open" for the open model (its betas are
        not SMPL's), else its file's name (SMPL_NEUTRAL.pkl, SMPL_MALE.pkl, ...)."""
        return "open" if self.model_name == "open" else self.source.name

    def posed(self, rotations: torch.Tensor, betas: torch.Tensor):
        """(B, 24, 3, 3) rotation matrices (joint 0 the global orientation) and (B, n) betas ->
        smplx's output: vertices (B, V, 3), joints (B, 45, 3: the 24 SMPL joints first)."""
        return self(betas=betas, global_orient=rotations[:, :1], body_pose=rotations[:, 1:], pose2rot=False)

    def eval_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) -> (B, 14, 3) LSP-14 joints for the 3DPW metrics."""
        return torch.einsum("jv,bvc->bjc", self.eval_regressor, vertices)


def derive_eval_regressor(j_regressor: np.ndarray, v_template: np.ndarray,
                          part_labels: np.ndarray) -> np.ndarray:
    """LSP-14 evaluation regressor from a model's own joint regressor: the SMPL joint rows
    for the limbs and neck, and the highest head vertex at rest for the head top."""
    rows = []
    head_part = SMPL_JOINT_NAMES.index("head")
    head_vertices = np.flatnonzero(part_labels == head_part)
    for name in EVAL_JOINT_NAMES:
        if name == "head_top":
            row = np.zeros(v_template.shape[0])
            row[head_vertices[np.argmax(v_template[head_vertices, 1])]] = 1.0
        else:
            row = j_regressor[SMPL_JOINT_NAMES.index(name)]
        rows.append(row)
    return np.stack(rows).astype(np.float32)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if path.suffix == ".pkl":
            return _converted_pickle(path)
    except BodyModelError:
        raise
    except Exception as err:  # zip, pickle and numpy all have their own error types
        raise BodyModelError(f"Could not read the body model file {path}: {err}. "
                             "The file may be truncated or not a SMPL-format model.") from err
    raise BodyModelError(f"Unsupported body model file {path}: expected a .npz or .pkl file.")


def _converted_pickle(path: Path) -> dict[str, np.ndarray]:
    """An SMPL .pkl read once without chumpy, then cached as .npz (keyed by its content)."""
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    cached = paths.cache_dir() / "body_models" / f"{path.stem}-{digest}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    raw = read_smpl_pickle(path)
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        raise BodyModelError(f"{path} is not a SMPL model: it lacks {', '.join(missing)}.")
    arrays = {k: np.asarray(raw[k]) for k in SMPL_KEYS}
    arrays["shapedirs"] = arrays["shapedirs"][:, :, :10]
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, cached)
    return arrays


def smpl_folders() -> list[Path]:
    """Where SMPL files are looked for: $PARE_SMPL_DIR (a folder, or the folder of the file it
    names), then assets/body_models/smpl/."""
    env = os.environ.get(paths.SMPL_DIR_ENV)
    folders = [Path(env).parent if Path(env).is_file() else Path(env)] if env else []
    return folders + [paths.SMPL_DIR]


def _first_file(names: tuple[str, ...]) -> Path | None:
    for folder in smpl_folders():
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def find_smpl_file() -> Path:
    """The user's SMPL neutral model: $PARE_SMPL_DIR (a folder or a file), then assets/body_models/smpl/."""
    env = os.environ.get(paths.SMPL_DIR_ENV)
    if env and Path(env).is_file():
        return Path(env)
    found = _first_file(SMPL_FILE_NAMES)
    if found is None:
        looked = ", ".join(str(f) for f in smpl_folders())
        raise BodyModelError(f"No SMPL model found (looked for {' / '.join(SMPL_FILE_NAMES)} in {looked}). "
                             + SMPL_HELP)
    return found


def find_gendered_smpl_files() -> dict[str, Path]:
    """Gender ("male", "female") -> the file of SMPL's model of that gender, for those found
    where the neutral one is looked for (smpl_folders)."""
    found = {gender: _first_file(names) for gender, names in SMPL_GENDERED_FILE_NAMES.items()}
    return {gender: path for gender, path in found.items() if path is not None}


def load_gendered_models(device: str | torch.device = "cpu") -> dict[str, BodyModel]:
    """SMPL's male and female models, those whose files are found ({} when neither is): what
    the 3DPW protocol poses men's and women's ground truth with. A file that is found but
    unreadable raises BodyModelError."""
    return {gender: load_body_model(path, device=device) for gender, path in find_gendered_smpl_files().items()}


def _smpl_extras(arrays: dict[str, np.ndarray], source: Path):
    """Part labels, eval regressor and vertex ids for a real SMPL file (6890 vertices)."""
    part_labels = np.asarray(arrays["weights"]).argmax(axis=1)
    h36m = source.parent / H36M_REGRESSOR_FILE
    if h36m.is_file():
        eval_regressor = np.load(h36m)[list(H36M_TO_EVAL)]
    else:
        eval_regressor = derive_eval_regressor(np.asarray(arrays["J_regressor"]),
                                               np.asarray(arrays["v_template"]), part_labels)
    return part_labels, eval_regressor, SMPLX_VERTEX_IDS["smplh"]


def _stored_extras(arrays: dict[str, np.ndarray]):
    """Part labels, eval regressor and vertex ids stored in a pare-demo body model file."""
    vertex_ids = {n: int(i) for n, i in zip(EXTRA_KEYPOINT_NAMES, arrays["extra_vertex_ids"])}
    return arrays["part_labels"], arrays["eval_regressor"], vertex_ids


def resolve_body_model_path(name: str | os.PathLike) -> tuple[str, Path]:
    """(display name, file) for "open", "smpl" or a path to a .npz/.pkl file."""
    if name == "open":
        if not paths.OPEN_BODY_MODEL_FILE.is_file():
            raise BodyModelError(
                f"The open body model {paths.OPEN_BODY_MODEL_FILE} is missing. It ships with "
                "the repository; restore it with git, or rebuild it with `make body-model`.")
        return "open", paths.OPEN_BODY_MODEL_FILE
    if name == "smpl":
        return "smpl", find_smpl_file()
    path = Path(name)
    if not path.is_file():
        raise BodyModelError(f"Body model file {path} does not exist. Pass 'open', 'smpl' "
                             "or the path of a SMPL-format .npz/.pkl file.")
    return path.stem, path


def load_body_model(name: str | os.PathLike = "open", device: str | torch.device = "cpu",
                    batch_size: int = 1) -> BodyModel:
    """The body model `name` ("open", "smpl" or a file path) as an smplx.SMPL subclass."""
    display_name, path = resolve_body_model_path(name)
    arrays = _read_arrays(path)
    missing = [k for k in SMPL_KEYS if k not in arrays]
    if missing:
        raise BodyModelError(f"{path} is not a SMPL-format model: it lacks {', '.join(missing)}.")
    if "part_labels" in arrays:
        part_labels, eval_regressor, vertex_ids = _stored_extras(arrays)
    else:
        part_labels, eval_regressor, vertex_ids = _smpl_extras(arrays, path)
    model = BodyModel(arrays, display_name, path, vertex_ids, eval_regressor, part_labels,
                      batch_size=batch_size)
    return model.to(device)
