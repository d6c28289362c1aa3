"""Export the best checkpoint of a training run as a pare-demo checkpoint.

    python -m training.export --config training/configs/cpu_synthetic.yaml --out assets/checkpoints/pare_bundled.pt

Works while a run is still going or after it was stopped: the best is the kept Lightning
checkpoint with the lowest validation PA-MPJPE (it is in the file name), or with
--select photo_pck the one with the highest real-photo dev-set PCK (runs with data.photos
keep those too); --checkpoint NAME exports that kept checkpoint instead (a file name in
the run's phase*/checkpoints, with or without .ckpt; phase2/NAME where both phases have
it), to score or bundle any epoch. --test-json adds the held-out results of
`training.evaluate --json` to the checkpoint, --sample-json those on the bundled sample set
(assets/samples, which tests/test_bundled_weights.py reproduces) and --photos-json the
overall figures of `training.evaluate_photos --out`; the app's Model tab shows them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.config import ConfigError, load_config
from training.figures import FiguresError, add_figure_options, figures_meta
from training.train import PHOTO_SCORE, SCORE, best_checkpoint, export_best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a run's best checkpoint for the app")
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--out", type=Path, required=True)
    add_figure_options(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--select", choices=("pa_mpjpe", "photo_pck"), default="pa_mpjpe",
                       help="keep the checkpoint best on synthetic validation or on the real-photo dev set")
    which.add_argument("--checkpoint", default=None,
                       help="export this kept checkpoint of the run (file name, .ckpt optional) instead of the best")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may follow the options
    try:
        extra = figures_meta(args.test_json, args.sample_json, args.photos_json)
        config = load_config(args.config, args.overrides)
        run_dir = config.train.run_path
        if args.checkpoint:
            path = kept_checkpoint(run_dir, args.checkpoint)
            pa, photo = SCORE.search(path.name), PHOTO_SCORE.search(path.name)
            metrics = ({"val_pa_mpjpe_mm": float(pa.group(1))} if pa else
                       {"val_photo_pck": float(photo.group(1))} if photo else {})
            what = "chosen by name"
        elif args.select == "photo_pck":
            path, score = best_checkpoint(run_dir, score=PHOTO_SCORE, lowest=False)
            metrics, what = {"val_photo_pck": score}, f"dev-photo PCK@0.1 {score:.3f}"
        else:
            path, score = best_checkpoint(run_dir)
            metrics, what = {"val_pa_mpjpe_mm": score}, f"validation PA-MPJPE {score:.1f} mm"
    except (ConfigError, FiguresError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Straight to --out: the run's own best.pt stays as training wrote it.
    export_best(run_dir, path, config.network(), metrics, extra, out=args.out)
    print(f"{path.name} ({what}) -> {args.out}")
    return 0


def kept_checkpoint(run_dir: Path, name: str) -> Path:
    """The run's kept Lightning checkpoint called `name` (".ckpt" optional; "phase2/NAME" picks
    the phase), in any phase; an error where none or several match."""
    phase, _, file_name = name.rpartition("/")
    file_name = file_name if file_name.endswith(".ckpt") else f"{file_name}.ckpt"
    found = sorted(run_dir.glob(f"{phase or 'phase*'}/checkpoints/{file_name}"))
    if len(found) > 1:
        raise FileNotFoundError(f"{file_name} is in more than one phase: "
                                + ", ".join(str(p.relative_to(run_dir).parent.parent / p.name) for p in found)
                                + "; name one as PHASE/NAME")
    if not found:
        kept = sorted(p.name for p in run_dir.glob("phase*/checkpoints/*.ckpt"))
        raise FileNotFoundError(f"no checkpoint {file_name} under {run_dir}/phase*/checkpoints; kept: "
                                + (", ".join(kept) if kept else "none"))
    return found[0]


if __name__ == "__main__":
    sys.exit(main())
