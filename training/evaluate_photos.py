"""Evaluate a checkpoint on real photos with COCO keypoint annotations.

    python -m training.evaluate_photos --annotations PATH [--checkpoint C] [--out results.json]
        [--per-person] [--no-flip-test] [--no-fit] [--no-refine]

Prints people found, PCK of the projected joints (with the detector and with the annotated
boxes), PCK of the part-attention peaks and, where the file has keypoints_3d, MPJPE and
PA-MPJPE, per source and overall (pare_demo.photo_evaluation says how each is measured);
--per-person adds a row for each person, and the JSON always has them.
Without --checkpoint: the bundled weights. For measuring only: never train on these photos.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from pare_demo.body import BodyModelError
from pare_demo.checkpoints import CheckpointError
from pare_demo.data.coco_keypoints import read_coco_keypoints
from pare_demo.images import ImageError
from pare_demo.photo_evaluation import ATTENTION_PCK_THRESHOLD, PCK_THRESHOLDS, evaluate_photos
from pare_demo.predict import add_prediction_switches
from pare_demo.predictor import Predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="real-photo evaluation (COCO keypoint annotations)")
    parser.add_argument("--annotations", type=Path, required=True, help="person_keypoints-style .json")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--per-person", action="store_true", help="also print each person's figures")
    add_prediction_switches(parser)
    args = parser.parse_args(argv)
    try:
        dataset = read_coco_keypoints(args.annotations)
        missing = [str(image.path) for image in dataset if image.people and not image.path.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} annotated images not found, first: {missing[0]}")
        predictor = Predictor(args.checkpoint, device=args.device, flip_test=args.flip_test, fit=args.fit,
                              refine=args.refine)
        results = evaluate_photos(predictor, dataset, progress=lambda images: tqdm(images, unit="image"))
    except (CheckpointError, BodyModelError, FileNotFoundError, ImageError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(predictor.description)
    print(results_table(results))
    if args.per_person:
        print(people_table(results["people"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results["config"]["annotations"] = str(args.annotations)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")
    return 0


def number(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def results_table(results: dict) -> str:
    """Rows: figures; columns: each source, then all people."""
    groups = [*results["by_source"].values(), results["overall"]]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(g) for g in groups]))

    row("people found (square-crop IoU)", lambda g: f"{g['detection']['found']}/{g['detection']['people']}")
    row("people found (plain box IoU)", lambda g: f"{g['detection']['found_plain_iou']}/{g['detection']['people']}")
    for key, label in (("pck_detector", "detector, found people"), ("pck_detector_all", "detector, all people"),
                       ("pck_annotated_boxes", "annotated boxes")):
        for t in PCK_THRESHOLDS:
            row(f"PCK@{t:g} {label}", lambda g, key=key, t=t: number(g[key][f"pck@{t:g}"]))
        row("  people / joints", lambda g, key=key: f"{g[key]['people']} / {g[key]['joints']}")
    t = ATTENTION_PCK_THRESHOLD
    row(f"attention peaks PCK@{t:g}, boxes", lambda g: number(g["attention_peaks"][f"pck@{t:g}"]))
    row("MPJPE mm, annotated boxes", lambda g: number(g["joints3d"]["mpjpe_mm"], 1))
    row("PA-MPJPE mm, annotated boxes", lambda g: number(g["joints3d"]["pa_mpjpe_mm"], 1))
    row("  people (3D)", lambda g: str(g["joints3d"]["people"]))

    width = max(len(label) for label, _ in rows)
    names = [*results["by_source"], "overall"]
    lines = [" " * width + "".join(f"{name:>10s}" for name in names)]
    lines += [f"{label:{width}s}" + "".join(f"{cell:>10s}" for cell in cells) for label, cells in rows]
    return "\n".join(lines)


def people_table(rows: list[dict]) -> str:
    """One line per annotated person: found or not, PCK@0.1 with the detector and the boxes,
    attention peaks, and the 3D errors where the photo has them."""
    t = ATTENTION_PCK_THRESHOLD

    lines = [f"{'image':<24} {'person':>6} {'found':>5} {'joints':>6} {'PCK@0.1 det':>11} "
             f"{'PCK@0.1 box':>11} {f'att@{t:g}':>8} {'MPJPE':>6} {'PA':>6}"]
    for r in rows:
        detector = r["pck_detector"]["pck@0.1"] if r["pck_detector"] else None
        lines.append(f"{r['image']:<24} {r['person']:>6} {'yes' if r['found'] else 'no':>5} {r['joints']:>6} "
                     f"{number(detector, 2):>11} {number(r['pck_annotated_boxes']['pck@0.1'], 2):>11} "
                     f"{number(r['attention_peaks'][f'pck@{t:g}'], 2):>8} {number(r['mpjpe_mm'], 0):>6} "
                     f"{number(r['pa_mpjpe_mm'], 0):>6}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
