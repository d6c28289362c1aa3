"""pare_demo.images on files as users and attackers upload them: huge, 16-bit, transparent, broken."""
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pare_demo.images import ImageError, load_image

REPO = Path(__file__).resolve().parent.parent


def write_blank_png(path: Path, width: int, height: int) -> None:
    """A black 1-bit PNG, written a band of rows at a time: a few hundred KB on disk however
    many pixels its header claims, and little memory here (Pillow would hold every pixel)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed pixels
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row * min(1000, height - top)) for top in range(0, height, 1000))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data + packer.flush()) + chunk(b"IEND", b""))


# In a fresh interpreter, so that its peak memory is this one load's alone.
MEASURE = """
import json, resource, sys, time
from pare_demo.images import ImageError, load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_image(sys.argv[1])
    error = None
except ImageError as err:
    error = str(err)
print(json.dumps({"seconds": time.perf_counter() - start, "error": error,
                  "grew_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
"""


@pytest.mark.parametrize("width, height, size_text", [(22000, 22000, "484000000 pixels"),
                                                      (11000, 10000, "11000 x 10000 pixels")])
def test_huge_images_are_refused_from_their_header(tmp_path, width, height, size_text):
    small = tmp_path / "small.png"
    write_blank_png(small, 200, 100)
    assert (load_image(small) == 0).all() and load_image(small).shape == (100, 200, 3)  # a valid PNG
    path = tmp_path / "photo.png"
    write_blank_png(path, width, height)
    assert path.stat().st_size < 1_000_000
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["error"] is not None, result
    assert "photo.png" in result["error"] and size_text in result["error"]
    assert str(tmp_path) not in result["error"]
    assert result["seconds"] < 1.0 and result["grew_mb"] < 50, result


def test_messages_name_the_file_not_its_folder(tmp_path):
    folder = tmp_path / "gradio" / "0123abcd"  # where an upload sits on the server
    folder.mkdir(parents=True)
    text = folder / "notes.png"
    text.write_text("this is not an image")
    truncated = folder / "cut.png"
    Image.new("RGB", (64, 64), "red").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    for path, reason in ((folder / "photo.png", "photo.png does not exist"), (text, "notes.png is not an image"),
                         (truncated, "cut.png is not an image")):
        with pytest.raises(ImageError, match=reason) as err:
            load_image(path)
        assert str(folder) not in str(err.value) and "0123abcd" not in str(err.value)


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 256).round().astype(np.uint16).reshape(64, 256)
    for name, pixels in (("ramp.png", ramp), ("dark.png", ramp // 256)):  # dark: values 0-255 of 65535
        path = tmp_path / name
        Image.fromarray(pixels).save(path)
        with Image.open(path) as im:
            assert im.mode == "I;16"  # Pillow keeps all 16 bits
        image = load_image(path)
        assert image.shape == (64, 256, 3) and image.dtype == np.uint8
        expected = np.round(pixels / 257.0)
        assert np.array_equal(image[:, :, 0], expected) and np.array_equal(image[:, :, 2], expected), name
    assert load_image(tmp_path / "dark.png").max() == 1  # stays dark, not stretched to white


def test_rgba_png_is_composited_on_white(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (300, 40, 4), dtype=np.uint8)  # more rows than one band
    rgba[0, :, 3], rgba[1, :, 3] = 0, 255
    path = tmp_path / "logo.png"
    Image.fromarray(rgba).save(path)
    image = load_image(path)
    alpha = rgba[:, :, 3:] / 255.0
    expected = np.round(rgba[:, :, :3] * alpha + 255 * (1 - alpha))
    assert np.array_equal(image, expected)
    assert (image[0] == 255).all() and np.array_equal(image[1], rgba[1, :, :3])  # transparent, opaque
