"""Project checkpoints: one file with the architecture config and the weights.

Loading never executes pickled code: files are read with torch.load(weights_only=True),
which only rebuilds tensors and plain Python values, and every failure (missing,
truncated, not a checkpoint, wrong kind) becomes one CheckpointError that says what to do.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "pare-demo-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or of the wrong kind."""


def read_torch_file(path: str | os.PathLike) -> Any:
    """torch.load with weights_only=True, failures turned into CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):
            raise CheckpointError(f"Could not read checkpoint {path}: the file is truncated or not a "
                                  f"PyTorch file ({str(err).splitlines()[0]}).") from err
        named = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line]
        detail = named[0].split(" was not")[0] if named else str(err).splitlines()[0]
        raise CheckpointError(
            f"{path} holds Python objects that would need code to load; refusing to run it "
            f"({detail}).") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"Could not read checkpoint {path}: the file is truncated or not a "
                              f"PyTorch file ({str(err).splitlines()[0]}).") from err


def save_checkpoint(path: str | os.PathLike, config: dict, state_dict: dict[str, torch.Tensor],
                    meta: dict | None = None) -> Path:
    """Write atomically (temporary file, then rename), so an interrupted save leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "config": config,
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
               "meta": meta or {}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """{'config', 'state_dict', 'meta'} of a project checkpoint."""
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = ""
        if isinstance(payload, dict) and "state_dict" in payload and "pytorch-lightning_version" in payload:
            hint = (" It looks like an official PARE Lightning checkpoint: convert it with "
                    f"`python -m pare_demo.convert_official {path} --out converted.pt`.")
        raise CheckpointError(f"{path} is not a pare-demo checkpoint.{hint}")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer pare-demo (format version "
                              f"{payload['version']}); update pare-demo to read it.")
    return {"config": payload["config"], "state_dict": payload["state_dict"], "meta": payload.get("meta", {})}
