"""Pictures of what the app shows on real photos, to look at rather than average.

    python -m training.photo_gallery --annotations ../shared/real_photos/annotations.json \
        --out docs/real_photos [--checkpoint PATH] [--extra assets/examples/astronaut.jpg]

For every photo (the app's defaults: its detector, the flip test) one row of three
pictures: the mesh overlay, the projected joints (annotated limb keypoints as green rings,
when the photo has them) and the most likely part per pixel from the attention maps.
Writes one JPEG per photo and contact.jpg with all rows.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

ROW_HEIGHT = 260
GREEN = (40, 200, 60)


def _fit(image: np.ndarray, height: int = ROW_HEIGHT) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def draw_annotation(image: np.ndarray, people, scale: float) -> np.ndarray:
    """The annotated limb keypoints (COCO 5-16) as green rings."""
    from pare_demo.body.joint_names import COCO_LIMB_INDICES

    out = image.copy()
    radius = max(3, round(max(out.shape[:2]) / 120))
    for person in people:
        for x, y, v in person.keypoints[list(COCO_LIMB_INDICES)]:
            if v > 0:
                cv2.circle(out, (round(x * scale), round(y * scale)), radius, GREEN, max(1, radius // 2), cv2.LINE_AA)
    return out


def photo_row(predictor, renderer, pixels: np.ndarray, annotated_people=()) -> np.ndarray:
    from pare_demo.app.analysis import analyse_image

    analysis = analyse_image(predictor, renderer, pixels)
    scale = analysis.image.shape[1] / pixels.shape[1]
    keypoints = draw_annotation(analysis.keypoints, annotated_people, scale)
    part_map = analysis.part_map(0)
    for person in range(1, len(analysis.people)):  # everyone's most likely part, on one picture
        mask = analysis.attention(person).maps.max(0) > analysis.attention(0).maps.max(0)
        part_map[mask] = analysis.part_map(person)[mask]
    return np.concatenate([_fit(analysis.overlay), _fit(keypoints), _fit(part_map)], axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotations", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled weights")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more photos, without annotations")
    args = parser.parse_args(argv)

    from pare_demo.data.coco_keypoints import read_coco_keypoints
    from pare_demo.images import load_image
    from pare_demo.predictor import Predictor
    from pare_demo.render import Renderer

    try:
        dataset = read_coco_keypoints(args.annotations)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    predictor = Predictor(args.checkpoint)
    renderer = Renderer()
    args.out.mkdir(parents=True, exist_ok=True)
    items = [(image.path, image.people) for image in dataset] + [(path, ()) for path in args.extra]
    rows = []
    try:
        for path, people in tqdm(items, desc="photos"):
            row = photo_row(predictor, renderer, load_image(path), people)
            cv2.imwrite(str(args.out / f"{Path(path).stem}.jpg"), cv2.cvtColor(row, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 85])
            rows.append(row)
    finally:
        renderer.close()
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    cv2.imwrite(str(args.out / "contact.jpg"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
