"""Turn whatever image a user has into an RGB uint8 array, or say clearly why not."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_INPUT_PIXELS = 100_000_000  # larger images are refused, from their header, before decoding
MAX_PIXELS = 40_000_000          # larger images are downscaled before processing
TARGET_PIXELS_WHEN_HUGE = 12_000_000
MIN_SIDE = 32                    # smaller images cannot show a person the network can read

# Pillow warns above this many pixels and refuses twice as many (DecompressionBombError) when it
# opens an image: in this whole process, so also where Gradio decodes an upload itself.
Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS
_LIMIT = f"pare-demo reads images of up to {MAX_INPUT_PIXELS // 1_000_000} megapixels."


class ImageError(ValueError):
    """The input is not an image pare-demo can read; the message says why."""


def load_image(source) -> np.ndarray:
    """RGB uint8 (H, W, 3) from a path, a PIL image or an array (gray, RGB, RGBA, 16-bit, float).
    Messages name a file by its own name only: uploads sit in the server's temporary folders."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path.name} does not exist.")
        try:
            with Image.open(path) as im:  # reads the header only
                check_pixels(im.size, path.name)
                im.load()
                image = ImageOps.exif_transpose(im)  # phones store rotation in EXIF
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:  # the warning: under -W error
            raise ImageError(f"{path.name} is too large to read: {err} {_LIMIT}") from err
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            reason = str(err).replace(str(path), path.name)  # Pillow's messages hold the whole path
            raise ImageError(f"{path.name} is not an image that can be read ({reason}).") from err
        return to_rgb_uint8(image)
    return to_rgb_uint8(source)


def check_pixels(size: tuple[int, int], name: str = "The image") -> None:
    """An ImageError when an image of `size` (width, height) has more than MAX_INPUT_PIXELS."""
    w, h = size
    if w * h > MAX_INPUT_PIXELS:
        raise ImageError(f"{name} is {w} x {h} pixels ({w * h / 1e6:.0f} megapixels): too large. {_LIMIT}")


def check_size(image: np.ndarray) -> np.ndarray:
    """The image itself, or an ImageError when it is too small to show anybody."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"The image is only {w}x{h} pixels: too small to find a person in. "
                         f"Use one at least {MIN_SIDE} pixels on each side.")
    return image


def to_rgb_uint8(image) -> np.ndarray:
    if image is None:
        raise ImageError("No image was given.")
    if isinstance(image, Image.Image):
        check_pixels(image.size)  # before decoding it, if it was opened lazily
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            image = np.asarray(image)
        else:
            image = np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))
    array = np.asarray(image)
    if array.dtype == object or array.ndim not in (2, 3) or array.size == 0:
        raise ImageError(f"Not an image: an array of shape {array.shape} and type {array.dtype}.")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ImageError(f"An image needs 1, 3 or 4 channels, not {array.shape[2]}.")
    array = _to_uint8(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = _on_white(array)
    return np.ascontiguousarray(array)


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite on white, as a viewer shows it: rgb * a/255 + 255 * (1 - a/255), rounded.
    In integers, a band of rows at a time: a huge image needs little memory beyond itself."""
    out = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for top in range(0, rgba.shape[0], 256):
        band = rgba[top:top + 256].astype(np.uint16)
        rgb, alpha = band[:, :, :3], band[:, :, 3:]
        out[top:top + 256] = (rgb * alpha + 255 * (255 - alpha) + 127) // 255  # + 127: round
    return out


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float64))
        scale = 255.0 if finite.max(initial=0) <= 1.0 else 1.0
        return np.clip(finite * scale, 0, 255).round().astype(np.uint8)
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:  # 16-bit: its full range, even in a dark image
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # + 32767: round
    if np.issubdtype(array.dtype, np.integer):
        top = 65535 if array.max(initial=0) > 255 else 255
        return (array.astype(np.float64) * (255.0 / top)).round().clip(0, 255).astype(np.uint8)
    raise ImageError(f"Unsupported pixel type {array.dtype}.")


def downscale_huge(array: np.ndarray) -> tuple[np.ndarray, float]:
    """(image, scale): images over MAX_PIXELS are shrunk to about TARGET_PIXELS_WHEN_HUGE;
    scale maps processed pixels back (original = processed / scale)."""
    import cv2

    h, w = array.shape[:2]
    if h * w <= MAX_PIXELS:
        return array, 1.0
    s = (TARGET_PIXELS_WHEN_HUGE / (h * w)) ** 0.5
    small = cv2.resize(array, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return small, small.shape[1] / w
