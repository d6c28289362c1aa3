"""Project checkpoints: one file with the architecture config and the weights.

Loading never executes pickled code: files are read with torch.load(weights_only=True),
which only rebuilds tensors and plain Python values, and every failure (missing,
truncated, not a checkpoint, wrong kind) becomes one CheckpointError that says what to do.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "pare-demo-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or of the wrong kind."""


# torch.load(weights_only=True) refusing an object that would need code to rebuild, in the
# wordings of torch 2.4 to 2.14: "Unsupported global: GLOBAL x ...", "Trying to load unsupported
# GLOBAL posix.system whose module posix is blocked", "Can only build ... but got ...", ...
_NEEDS_CODE = re.compile(r"unsupported global|unrecognized function|can only (?:build|create new object)", re.I)


def _needs_code(err: Exception) -> str | None:
    """What a weights_only refusal names (e.g. 'posix.system'), or None for other failures."""
    for line in str(err).splitlines():
        if _NEEDS_CODE.search(line):
            named = re.search(r"GLOBAL (\S+)", line)
            return named.group(1) if named else line.strip().split(". ")[0]
    return None


def read_torch_file(path: str | os.PathLike) -> Any:
    """torch.load with weights_only=True, failures turned into CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load on arbitrary bytes raises many types
        needed = _needs_code(err)
        if needed:
            raise CheckpointError(f"{path} holds Python objects that would need code to load ({needed}): "
                                  "refusing to run code in it.") from err
        raise CheckpointError(f"Could not read checkpoint {path}: the file is truncated or not a "
                              f"PyTorch file ({_reason(err)}).") from err


def _reason(err: Exception) -> str:
    """The line of a torch.load failure that says what went wrong. torch wraps it in advice to
    load with weights_only=False, which would run any code the file holds: left out."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return next((line for line in lines if "weights_only" not in line), type(err).__name__)


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
    version = payload.get("version", 0)
    if type(version) is not int:  # bool is an int too
        raise CheckpointError(f"{path} is not a usable pare-demo checkpoint: its format version is "
                              f"{version!r}, not a whole number.")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer pare-demo (format version "
                              f"{version}); update pare-demo to read it.")
    problem = _layout_problem(payload)
    if problem:
        raise CheckpointError(f"{path} is not a usable pare-demo checkpoint: {problem}.")
    return {"config": payload["config"], "state_dict": payload["state_dict"], "meta": payload.get("meta", {})}


def _layout_problem(payload: dict) -> str | None:
    """What is missing from a checkpoint's parts or of the wrong type, or None."""
    for key in ("config", "state_dict"):
        if key not in payload:
            return f"it has no {key!r}"
    for key in ("config", "state_dict", "meta"):
        value = payload.get(key, {})
        if not isinstance(value, dict):
            return f"its {key!r} is a {type(value).__name__}, not a dict"
    bad = [k for k, v in payload["state_dict"].items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        return f"its 'state_dict' has {len(bad)} entries that are not named tensors (e.g. {bad[0]!r})"
    return None
