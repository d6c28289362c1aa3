"""Average the weights of exported checkpoints of one network (a uniform "model soup").

    python -m training.average --out averaged.pt EPOCH1.pt EPOCH2.pt ... [--test-json ...]

Checkpoints along one line of training (the epochs of a run, or of runs started from the same
weights) lie close together, and their mean can generalise better than one of them: the
bundled weights are such a mean (docs/bundled_weights.md). Every floating-point tensor is
averaged, BatchNorm's running statistics included; integer tensors (BatchNorm's batch counts)
come from the last checkpoint. All inputs must have the same network config and the same
tensors (names, shapes, dtypes). Export a run's epochs first with `training.export
--checkpoint NAME`; --test-json, --sample-json and --photos-json attach measured figures as
`training.export` does.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

from pare_demo.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from training.figures import FiguresError, add_figure_options, figures_meta


class AverageError(ValueError):
    """The checkpoints cannot be averaged (too few, or different networks)."""


def average_checkpoints(checkpoints: list[dict], names: list[str]) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, state dict) of the uniform average of loaded checkpoints (load_checkpoint's dicts);
    names say which file each came from, for the errors."""
    if len(checkpoints) < 2:
        raise AverageError(f"averaging needs at least two checkpoints, got {len(checkpoints)}")
    first, first_name = checkpoints[0], names[0]
    for checkpoint, name in zip(checkpoints[1:], names[1:]):
        if checkpoint["config"] != first["config"]:
            raise AverageError(f"{name} has another network config than {first_name}: "
                               f"{checkpoint['config']} vs {first['config']}")
        keys, first_keys = set(checkpoint["state_dict"]), set(first["state_dict"])
        if keys != first_keys:
            odd = sorted(keys ^ first_keys)
            raise AverageError(f"{name} and {first_name} hold different tensors ({len(odd)}, e.g. {odd[0]})")
        for key, tensor in checkpoint["state_dict"].items():
            other = first["state_dict"][key]
            if tensor.shape != other.shape or tensor.dtype != other.dtype:
                raise AverageError(f"{key} is {tuple(tensor.shape)} {tensor.dtype} in {name} but "
                                   f"{tuple(other.shape)} {other.dtype} in {first_name}")
    last = checkpoints[-1]["state_dict"]
    averaged = {key: (torch.stack([c["state_dict"][key] for c in checkpoints]).mean(0)
                      if tensor.is_floating_point() else tensor)
                for key, tensor in last.items()}
    return first["config"], averaged


def source_of(checkpoint: dict, path: Path) -> str:
    """Where an input came from: its meta's source (training.export writes run/phase/file),
    else its folder and file name."""
    return checkpoint["meta"].get("source") or f"{path.parent.name}/{path.name}"


def runs_counted(sources: list[str]) -> str:
    """'blazepose_v5 x10, blazepose_v6 x8': how many of the sources (run/phase/file) each run
    gave; a source without a folder (an earlier average, say) counts as itself."""
    counts = Counter(source.split("/")[0] for source in sources)  # keeps the order of appearance
    return ", ".join(f"{run} x{n}" for run, n in counts.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Average exported checkpoints of one network")
    parser.add_argument("checkpoints", nargs="+", type=Path, help="exported pare-demo checkpoints")
    parser.add_argument("--out", type=Path, required=True)
    add_figure_options(parser)
    args = parser.parse_args(argv)
    repeated = sorted({str(p) for p in args.checkpoints if args.checkpoints.count(p) > 1})
    if repeated:  # allowed (it weights them), but seldom meant
        print(f"note: given more than once, so weighted more: {', '.join(repeated)}", file=sys.stderr)
    try:
        figures = figures_meta(args.test_json, args.sample_json, args.photos_json)
        checkpoints = [load_checkpoint(path) for path in args.checkpoints]
        config, state_dict = average_checkpoints(checkpoints, [str(p) for p in args.checkpoints])
    except (CheckpointError, AverageError, FiguresError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sources = [source_of(c, p) for c, p in zip(checkpoints, args.checkpoints)]
    meta = {"source": f"uniform average of {len(sources)} checkpoints ({runs_counted(sources)})",
            "averaged": sources, **figures}
    save_checkpoint(args.out, config, state_dict, meta)
    print(f"average of {len(sources)} checkpoints -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
