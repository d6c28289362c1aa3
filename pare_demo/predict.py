"""Run PARE on images from the command line.

    python -m pare_demo.predict IMAGE_OR_DIR... --out DIR [--checkpoint C] [--body-model B] [--device D]

Writes, per image, DIR/<stem>_person<k>.npz with each person's Prediction fields, and
the pictures <stem>_overlay.png (meshes on the image), <stem>_side.png, <stem>_attention.png
(the first person's 24 part maps), <stem>_keypoints.png and <stem>_mesh.glb (everyone,
Y up). A file that cannot be read is reported on one line and skipped; the exit status is
1 if any failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pare_demo.body.model import BodyModelError
from pare_demo.checkpoints import CheckpointError
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


def prediction_arrays(prediction) -> dict[str, np.ndarray]:
    """The Prediction's fields as arrays for np.savez (the crop as its centre, size and affine)."""
    out = {}
    for f in dataclasses.fields(prediction):
        value = getattr(prediction, f.name)
        if f.name == "crop":
            out.update(crop_center=value.center, crop_size=np.float64(value.size), crop_affine=value.affine)
        elif f.name == "timings":
            out.update({f"ms_{k}": np.float64(v) for k, v in value.items()})
        else:
            out[f.name] = np.asarray(value)
    return out


def write_pictures(image: np.ndarray, people, faces: np.ndarray, stem: Path, renderer) -> None:
    from PIL import Image

    from pare_demo import visualize
    from pare_demo.render import GL_FLIP, people_meshes

    meshes = people_meshes(people, faces)
    focal = people[0].focal_length
    Image.fromarray(renderer.overlay(image, meshes, focal)).save(f"{stem}_overlay.png")
    Image.fromarray(renderer.side_view(meshes)).save(f"{stem}_side.png")
    grid = visualize.attention_grid(image, people[0].part_attention_on_image(max_side=400))
    Image.fromarray(grid).save(f"{stem}_attention.png")
    skeletons = image
    for person in people:
        skeletons = visualize.draw_skeleton(skeletons, person.joints2d)
    Image.fromarray(skeletons).save(f"{stem}_keypoints.png")
    everyone = np.concatenate([m.vertices for m in meshes]) @ GL_FLIP.T
    all_faces = np.concatenate([faces + i * len(m.vertices) for i, m in enumerate(meshes)])
    visualize.export_glb(everyone, all_faces, f"{stem}_mesh.glb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PARE on images: SMPL parameters, mesh, joints, attention")
    parser.add_argument("inputs", nargs="+", type=Path, help="images or folders of images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled weights")
    parser.add_argument("--body-model", default=None, help="open, smpl or a file (default: the checkpoint's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from pare_demo.predictor import Predictor

    try:
        predictor = Predictor(args.checkpoint, body_model=args.body_model, device=args.device)
    except (CheckpointError, BodyModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    files = collect_inputs(args.inputs)
    from pare_demo.render import Renderer

    renderer = Renderer()
    failed = 0
    for path in tqdm(files, desc="images", unit="img", disable=len(files) < 2):
        try:
            people = predictor.predict(load_image(path))
        except ImageError as err:
            failed += 1
            tqdm.write(f"skipped {path}: {err}")
            continue
        for k, person in enumerate(people):
            np.savez_compressed(args.out / f"{path.stem}_person{k}.npz", **prediction_arrays(person))
        write_pictures(load_image(path), people, predictor.faces(), args.out / path.stem, renderer)
    print(f"{len(files) - failed} of {len(files)} images done, results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
