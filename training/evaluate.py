"""Evaluate a checkpoint on 3DPW (or a synthetic set in its layout).

    python -m training.evaluate [--checkpoint C] --dataset-root R --split test [--json OUT]
        [--no-flip-test]

Prints MPJPE, PA-MPJPE and PVE in mm (14 LSP joints, pelvis-aligned) over all frames,
per sequence, and over the 3DPW-OCC sequences when present. Without --checkpoint: the
bundled weights. Ground-truth bodies, as SPIN, VIBE and PARE pose them: men and women
with SMPL's male and female models where their files are found (SMPL_MALE.pkl, ... where
SMPL_NEUTRAL.pkl is looked for), everyone else with the checkpoint's body model;
--gt-body-model poses everyone with that one instead. The JSON names the model for each
gender (ground_truth_body_models). Predictions use the flip test, as the app does
(pare_demo.flip_test), unless --no-flip-test.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pare_demo.body import BodyModelError, load_body_model
from pare_demo.checkpoints import CheckpointError
from pare_demo.data.pw3d import read_pw3d
from pare_demo.evaluation import GroundTruthBodies, evaluate_samples, summarize
from pare_demo.predict import add_prediction_switches
from pare_demo.predictor import Predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="3DPW-protocol evaluation")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--dataset-root", type=Path, required=True)
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--every", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--gt-body-model", default=None,
                        help="pose all ground truth with this body model ('open', 'smpl' or a file) "
                             "instead of SMPL's gendered models")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    add_prediction_switches(parser, refine=False)  # crops come from the ground truth's boxes
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(args.checkpoint, device=args.device, flip_test=args.flip_test, fit=args.fit)
        if args.gt_body_model:
            gt_bodies = GroundTruthBodies(load_body_model(args.gt_body_model, device=predictor.device))
        else:
            gt_bodies = GroundTruthBodies.protocol(predictor.body_model)
        samples = read_pw3d(args.dataset_root, args.split, every=args.every)
    except (CheckpointError, BodyModelError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = summarize(evaluate_samples(predictor, samples, gt_bodies))
    print("ground truth posed with: " + ", ".join(f"{g} {m}" for g, m in gt_bodies.names().items()))
    print(f"{'sequence':40s} {'frames':>7s} {'MPJPE':>8s} {'PA-MPJPE':>9s} {'PVE':>8s}")
    rows = [*summary["per_sequence"].items(), ("ALL", summary)]
    if "3dpw_occ" in summary:
        rows.append(("3DPW-OCC", summary["3dpw_occ"]))
    for name, row in rows:
        pve = f"{row['pve']:8.1f}" if row["pve"] is not None else f"{'-':>8s}"
        print(f"{name:40s} {row['num_frames']:7d} {row['mpjpe']:8.1f} {row['pa_mpjpe']:9.1f} {pve}")
    if args.json:
        args.json.write_text(json.dumps({**summary, "dataset_root": str(args.dataset_root), "split": args.split,
                                         "flip_test": args.flip_test, "fit": args.fit,
                                         "ground_truth_body_models": gt_bodies.names()},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
