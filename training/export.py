"""Export the best checkpoint of a training run as a pare-demo checkpoint.

    python -m training.export --config training/configs/cpu_synthetic.yaml --out assets/checkpoints/pare_bundled.pt

Works while a run is still going or after it was stopped: the best is the kept Lightning
checkpoint with the lowest validation PA-MPJPE (it is in the file name). --test-json adds
the held-out results of `training.evaluate --json` to the checkpoint, and the app's Model
tab shows them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.train import best_checkpoint, export_best, load_config, model_config

TEST_KEYS = ("mpjpe", "pa_mpjpe", "pve", "num_frames", "dataset_root", "split", "flip_test")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a run's best checkpoint for the app")
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--test-json", type=Path, default=None,
                        help="training.evaluate --json output for these weights")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may follow the options
    config = load_config(args.config, args.overrides)
    run_dir = Path(config["train"]["run_dir"]).expanduser()
    path, score = best_checkpoint(run_dir)
    extra = None
    if args.test_json:
        results = json.loads(args.test_json.read_text())
        extra = {"test": {k: results[k] for k in TEST_KEYS if k in results}}
    # Straight to --out: the run's own best.pt stays as training wrote it.
    export_best(run_dir, path, model_config(config), {"val_pa_mpjpe_mm": score}, extra, out=args.out)
    print(f"{path.name} (validation PA-MPJPE {score:.1f} mm) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
