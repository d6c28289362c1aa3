"""Where files live: the bundled assets and the folders users drop their own files into."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
BODY_MODELS_DIR = ASSETS_DIR / "body_models"
OPEN_BODY_MODEL_FILE = BODY_MODELS_DIR / "open" / "open_body_neutral.npz"
SMPL_DIR = BODY_MODELS_DIR / "smpl"

# BlazePose networks converted from MediaPipe's .tflite files (pare_demo.blazepose.convert).
BLAZEPOSE_DIR = ASSETS_DIR / "blazepose"
BLAZEPOSE_DETECTOR = BLAZEPOSE_DIR / "pose_detection.pt"
BLAZEPOSE_LANDMARKS = BLAZEPOSE_DIR / "pose_landmark_full.pt"

# Environment variable naming a folder (or file) holding the user's SMPL model.
SMPL_DIR_ENV = "PARE_SMPL_DIR"


def cache_dir() -> Path:
    """Folder for files pare-demo derives once and reuses (e.g. SMPL pickles converted to .npz)."""
    root = os.environ.get("PARE_CACHE_DIR") or Path.home() / ".cache" / "pare_demo"
    return Path(root)

CHECKPOINTS_DIR = ASSETS_DIR / "checkpoints"
BUNDLED_CHECKPOINT = CHECKPOINTS_DIR / "pare_bundled.pt"
# Environment variable naming another folder of checkpoints the app offers (e.g. ~/pare-runs).
CHECKPOINTS_DIR_ENV = "PARE_CHECKPOINTS_DIR"


def checkpoint_dirs() -> list[Path]:
    """Folders whose .pt files the app offers: the repository's, then $PARE_CHECKPOINTS_DIR."""
    extra = os.environ.get(CHECKPOINTS_DIR_ENV)
    return [CHECKPOINTS_DIR] + ([Path(extra).expanduser()] if extra else [])

# A small synthetic set in 3DPW's layout, so the app's 3DPW explorer works out of the box.
SAMPLES_DIR = ASSETS_DIR / "samples"
SAMPLE_PW3D_DIR = SAMPLES_DIR / "pw3d_sample"
