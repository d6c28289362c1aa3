"""Convert an official PARE Lightning checkpoint into a pare-demo checkpoint.

    python -m pare_demo.convert_official pare_checkpoint.ckpt --out assets/checkpoints/pare_official.pt

The official files hold the weights under `state_dict` with a `model.` prefix, beside
trainer entries (optimizer states, SMPL buffers, a `hyper_parameters` config that may be
pickled config objects). Only the network weights are kept. Reading never runs pickled
code: the file is read with torch's weights-only loader; if it holds objects that need
code (the config), a restricted unpickler replaces each of them with an inert stand-in.
"""
from __future__ import annotations

import argparse
import pickle
import sys
import types
from pathlib import Path

import torch
import torch._weights_only_unpickler as weights_only

from pare_demo.checkpoints import CheckpointError, read_torch_file, save_checkpoint
from pare_demo.models.pare import ModelConfig

# Official head module names -> ours (see pare_demo.models.head).
HEAD_RENAMES = {
    "keypoint_deconv_layers.": "part_branch.",
    "smpl_deconv_layers.": "smpl_branch.",
    "keypoint_final_layer.": "part_logits.",
    "smpl_final_layer.": "smpl_features.",
    "shape_mlp.": "shape_regressor.",
    "cam_mlp.": "cam_regressor.",
}
# Official tensors the network does not use in its forward pass.
UNUSED = ("backbone.final_layer.", "head.temperature", "head.init_pose", "head.init_shape", "head.init_cam")


class _Inert:
    """Stands in for any class the checkpoint names but a weights-only load refuses."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    # Pickled dict and list subclasses fill themselves through these (after __new__ only).
    def __setitem__(self, key, value):
        self.__dict__.setdefault("entries", {})[key] = value

    def append(self, value):
        self.__setitem__(len(self.__dict__.get("entries", {})), value)

    def extend(self, values):
        for value in values:
            self.append(value)


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = weights_only._get_allowed_globals()

    def find_class(self, module, name):
        obj = self._allowed.get(f"{module}.{name}")
        if obj is not None:
            return obj
        if module.startswith("torch._utils") and name.startswith("_rebuild"):
            return getattr(__import__("torch._utils", fromlist=[name]), name)
        return _Inert


_restricted_pickle = types.SimpleNamespace(__name__="pare_demo_restricted_pickle",
                                           Unpickler=_RestrictedUnpickler, load=pickle.load)


def read_official(path: str | Path) -> dict[str, torch.Tensor]:
    """The `state_dict` of an official PARE checkpoint, read without running pickled code."""
    try:
        payload = read_torch_file(path)
    except CheckpointError as err:
        if "would need code" not in str(err):
            raise
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False,
                                 pickle_module=_restricted_pickle)
        except Exception as inner:
            raise CheckpointError(f"Could not read {path}: {inner}") from inner
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a PARE Lightning checkpoint (no 'state_dict' entry).")
    return payload["state_dict"]


def official_to_project(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map `model.backbone.*` / `model.head.*` onto pare_demo's PARE parameter names."""
    out = {}
    for key, value in state_dict.items():
        if not key.startswith(("model.backbone.", "model.head.")):
            continue  # SMPL buffers and trainer state
        key = key[len("model."):]
        if key.startswith(UNUSED):
            continue
        if key.startswith("backbone."):
            rest = key[len("backbone."):]
            out["backbone." + (rest if rest.startswith("upsample_stage_") else "net." + rest)] = value
            continue
        rest = key[len("head."):]
        if rest == "pose_mlp.weight":  # (1, 6, C, 24, 1, 1) locally connected -> (24, 6, C)
            out["head.pose_weight"] = value[0, :, :, :, 0, 0].permute(2, 0, 1).contiguous()
            continue
        for old, new in HEAD_RENAMES.items():
            if rest.startswith(old):
                out["head." + new + rest[len(old):]] = value
                break
        else:
            raise CheckpointError(f"Unexpected tensor in the official checkpoint: model.{key}")
    if "head.pose_weight" not in out or not any(k.startswith("backbone.net.") for k in out):
        raise CheckpointError("The checkpoint holds no PARE network weights (model.backbone.*, model.head.*).")
    return out


def convert(src: str | Path, dst: str | Path) -> Path:
    state = official_to_project(read_official(src))
    if state["backbone.upsample_stage_2.1.weight"].shape[0] != 64:
        raise CheckpointError(f"{src} is not an HRNet-W32 PARE checkpoint.")
    config = ModelConfig(backbone="hrnet_w32", body_model="smpl")
    meta = {"source": f"official PARE checkpoint {Path(src).name}",
            "licence": "official PARE weights: non-commercial research use only"}
    return save_checkpoint(dst, config.to_dict(), state, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert an official PARE checkpoint to a pare-demo checkpoint")
    parser.add_argument("checkpoint", type=Path, help="pare_checkpoint.ckpt or pare_w_3dpw_checkpoint.ckpt")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        print(convert(args.checkpoint, args.out))
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
