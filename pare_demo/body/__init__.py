"""Body models: the open SMPL-format model, the user's SMPL, and their constants."""
from pare_demo.body.joint_names import (
    EVAL_JOINT_NAMES, EXTRA_KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS,
)
from pare_demo.body.model import BodyModel, BodyModelError, load_body_model

__all__ = ["BodyModel", "BodyModelError", "load_body_model", "SMPL_JOINT_NAMES",
           "SMPL_PARENTS", "EVAL_JOINT_NAMES", "EXTRA_KEYPOINT_NAMES"]
