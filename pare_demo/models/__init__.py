"""The PARE network: backbones, head, config, and loading from checkpoints."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from pare_demo import paths
from pare_demo.checkpoints import CheckpointError, load_checkpoint
from pare_demo.models.head import HeadConfig, PareHead
from pare_demo.models.pare import PARE, ModelConfig, PareOutput, default_config

__all__ = ["PARE", "ModelConfig", "HeadConfig", "PareHead", "PareOutput", "default_config",
           "load_model", "model_from_checkpoint"]


def model_from_checkpoint(checkpoint: dict) -> PARE:
    """A PARE built from a loaded checkpoint's config, with its weights."""
    try:
        config = ModelConfig.from_dict(checkpoint["config"])
        model = PARE(config)  # an unknown backbone, or head settings it cannot take
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"The checkpoint's model config is not understood: {err}") from err
    try:
        missing, unexpected = model.load_weights(checkpoint["state_dict"])
    except RuntimeError as err:  # tensors of the wrong shape
        raise CheckpointError(f"The checkpoint does not fit a {config.backbone} PARE: "
                              f"{str(err).splitlines()[1].strip()}") from err
    if missing or unexpected:
        raise CheckpointError(f"The checkpoint does not fit a {config.backbone} PARE: "
                              f"{len(missing)} missing tensors (e.g. {missing[:3]}), "
                              f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}).")
    return model


def load_model(checkpoint_path: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> PARE:
    """The network of a project checkpoint in eval mode; None = the bundled weights."""
    if checkpoint_path is None:
        checkpoint_path = paths.BUNDLED_CHECKPOINT
        if not Path(checkpoint_path).is_file():
            raise CheckpointError(
                f"The bundled weights {checkpoint_path} are missing: restore them with git, or train "
                "them with `python -m training.train --config training/configs/cpu_synthetic.yaml` "
                "(see README).")
    model = model_from_checkpoint(load_checkpoint(checkpoint_path))
    return model.to(device).eval()
