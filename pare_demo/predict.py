"""Run PARE on images from the command line.

    python -m pare_demo.predict IMAGE_OR_DIR... --out DIR [--checkpoint C] [--body-model B]
        [--device D] [--no-flip-test] [--no-fit] [--no-refine]

Writes, per image, DIR/<stem>_person<k>.npz with each person's Prediction fields and the
image's camera, size and timings (ImageResult), and
the pictures <stem>_overlay.png (meshes on the image), <stem>_side.png, <stem>_attention.png
(the first person's 24 part maps), <stem>_keypoints.png and <stem>_mesh.glb (everyone,
part-coloured, Y up). A file that cannot be read is reported on one line and skipped; the exit status is
1 if any failed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pare_demo.body.model import BodyModelError
from pare_demo.checkpoints import CheckpointError
from pare_demo.exports import prediction_arrays
from pare_demo.images import ImageError, load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def collect_inputs(items: list[Path]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(item)
    return files


def write_pictures(analysis, stem: Path) -> None:
    """The pictures and the mesh of one analysed image, beside its .npz files."""
    import shutil

    from PIL import Image

    Image.fromarray(analysis.overlay).save(f"{stem}_overlay.png")
    Image.fromarray(analysis.side).save(f"{stem}_side.png")
    Image.fromarray(analysis.attention_grid(0)).save(f"{stem}_attention.png")
    Image.fromarray(analysis.keypoints).save(f"{stem}_keypoints.png")
    shutil.copyfile(analysis.files["glb"], f"{stem}_mesh.glb")


def add_prediction_switches(parser: argparse.ArgumentParser, refine: bool = True) -> None:
    """--no-flip-test and --no-fit, for every command that runs the Predictor, and
    --no-refine for those that crop people found in photos (refine=True)."""
    parser.add_argument("--no-flip-test", dest="flip_test", action="store_false",
                        help="the network on each crop alone, without averaging in its mirror image")
    parser.add_argument("--no-fit", dest="fit", action="store_false",
                        help="the network's own pose and camera, not fitted to its attention keypoints")
    if refine:
        parser.add_argument("--no-refine", dest="refine", action="store_false",
                            help="crop around the detector's (or your) box, not where BlazePose's landmarks put the body")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PARE on images: SMPL parameters, mesh, joints, attention")
    parser.add_argument("inputs", nargs="+", type=Path, help="images or folders of images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled weights")
    parser.add_argument("--body-model", default=None, help="open, smpl or a file (default: the checkpoint's)")
    parser.add_argument("--device", default="auto")
    add_prediction_switches(parser)
    args = parser.parse_args(argv)

    from pare_demo.predictor import Predictor

    try:
        predictor = Predictor(args.checkpoint, body_model=args.body_model, device=args.device,
                              flip_test=args.flip_test, fit=args.fit, refine=args.refine)
    except (CheckpointError, BodyModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    files = collect_inputs(args.inputs)
    from pare_demo.app.analysis import analyse_image
    from pare_demo.render import Renderer

    renderer = Renderer()
    failed = 0
    for path in tqdm(files, desc="images", unit="img", disable=len(files) < 2):
        try:
            analysis = analyse_image(predictor, renderer, load_image(path))
        except ImageError as err:
            failed += 1
            tqdm.write(f"skipped {path}: {err}")
            continue
        for k, person in enumerate(analysis.people):
            np.savez_compressed(args.out / f"{path.stem}_person{k}.npz", **prediction_arrays(person, analysis.result))
        write_pictures(analysis, args.out / path.stem)
    print(f"{len(files) - failed} of {len(files)} images done, results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
