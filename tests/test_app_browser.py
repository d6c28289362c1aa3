"""The real app, served by Gradio, driven by Debian's Chromium through Playwright."""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # Chromium's own moving test pattern as the webcam, allowed without a prompt.
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
# Screenshots go to an untracked build folder; `make screenshots` sets PARE_SCREENSHOTS_DIR=docs
# to refresh the pictures the docs show.
SCREENSHOTS = Path(os.environ.get("PARE_SCREENSHOTS_DIR") or ROOT / "build" / "screenshots")
if not SCREENSHOTS.is_absolute():
    SCREENSHOTS = ROOT / SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


@pytest.fixture(scope="module", autouse=True)
def screenshots_folder():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(small_checkpoint, tmp_path_factory):
    """The app on the bundled weights (the untrained test checkpoint until they exist)."""
    from pare_demo import paths

    checkpoint = paths.BUNDLED_CHECKPOINT if paths.BUNDLED_CHECKPOINT.is_file() else small_checkpoint
    # A second network the Model tab can switch to.
    user_checkpoints = tmp_path_factory.mktemp("user_checkpoints")
    shutil.copyfile(small_checkpoint, user_checkpoints / "untrained_test.pt")
    env = dict(os.environ, PARE_CHECKPOINTS_DIR=str(user_checkpoints))
    port = free_port()
    log = open(tmp_path_factory.mktemp("app") / "app.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoint",
                             str(checkpoint)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited: {open(log.name).read()[-2000:]}")
            time.sleep(1)
    else:
        proc.kill()
        raise RuntimeError("the app did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.get_by_role("button", name="Analyse").wait_for(timeout=60000)
        yield page
        browser.close()


def block(page, label: str):
    """The component block whose label is `label`."""
    return page.locator(f"[data-testid='block-label']:text-is('{label}')").locator(
        "xpath=ancestor::div[contains(@class,'block')][1]")


def image_pixels(page, label: str) -> np.ndarray:
    """The pixels an output image component shows, fetched by the browser."""
    src = block(page, label).locator("img").first.get_attribute("src")
    return image_pixels_from(page, src)


def image_pixels_from(page, src: str) -> np.ndarray:
    data = page.evaluate("async (src) => Array.from(new Uint8Array(await (await fetch(src)).arrayBuffer()))", src)
    return np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"))


def upload(page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.wait_for_timeout(1500)


def test_image_tab_analyses_a_photo_and_recovers_from_a_bad_file(page, tmp_path):
    photo = ROOT / "assets" / "examples" / "astronaut.jpg"
    upload(page, photo)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("person(s) on CPU").wait_for(timeout=90000)
    overlay = image_pixels(page, "Mesh overlay")
    # The answer leads: in a 1280 x 800 window the overlay, side view and keypoints are all in
    # view without scrolling, the overlay large.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)
    boxes = {label: block(page, label).bounding_box() for label in ("Mesh overlay", "Side view", "2D keypoints")}
    page.screenshot(path=str(SCREENSHOTS / "app_image_tab_1280x800.jpg"), type="jpeg", quality=80)
    page.set_viewport_size({"width": 1400, "height": 1000})
    for label, box in boxes.items():
        assert box["y"] >= 0 and box["y"] + box["height"] <= 800 and box["x"] + box["width"] <= 1280, label
    assert boxes["Mesh overlay"]["width"] >= 400 and boxes["Mesh overlay"]["height"] >= 400
    original = np.asarray(Image.open(photo).convert("RGB"))
    assert overlay.shape == original.shape
    assert np.abs(overlay.astype(int) - original).sum(2).max() > 60  # the mesh is drawn
    grid = image_pixels(page, "All 24 part-attention maps")
    assert grid.shape[1] > grid.shape[0]  # 6 x 4 tiles
    assert page.locator(".js-plotly-plot").count() >= 1
    for name in ("mesh.glb", "mesh.obj", "smpl_parameters.json"):  # the downloads
        page.locator(f"a[download='{name}']").first.wait_for(state="attached", timeout=10000)
    # The Model3D viewer draws the mesh (it loads the GLB a few seconds after the result).
    viewer = block(page, "Mesh (part colours)").locator("canvas")
    viewer.scroll_into_view_if_needed()
    drawn = 0.0
    for _ in range(30):
        page.wait_for_timeout(1000)
        shot = np.asarray(Image.open(io.BytesIO(viewer.screenshot())).convert("RGB")).astype(int)
        drawn = float((np.abs(shot - shot[0, 0]).sum(2) > 30).mean())  # pixels unlike the corner
        if drawn > 0.01:
            break
    assert drawn > 0.01, f"the 3D viewer drew {drawn:.2%} of its canvas"
    page.screenshot(path=str(SCREENSHOTS / "app_image_tab.jpg"), full_page=True, type="jpeg", quality=80)

    # A text file named .png: a readable message, then a good image works again.
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    upload(page, bad)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("is not an image that can be read").first.wait_for(timeout=30000)
    page.reload()
    page.get_by_role("button", name="Analyse").wait_for(timeout=60000)
    upload(page, photo)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("person(s) on CPU").wait_for(timeout=90000)


def test_16_bit_and_transparent_photos_reach_our_reader_whole(page, tmp_path):
    """Gradio used to decode uploads itself: a 16-bit PNG arrived clipped to 8 bits (mostly
    white) and RGBA was flattened its way. The page passes the file through now, so
    pare_demo.images scales 16 bits and puts transparency on white."""
    astronaut = np.asarray(Image.open(ROOT / "assets" / "examples" / "astronaut.jpg").convert("L"))
    deep = tmp_path / "deep.png"
    Image.fromarray(astronaut.astype(np.uint16) * 257).save(deep)  # the same picture in 16 bits
    upload(page, deep)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("person(s) on CPU").wait_for(timeout=90000)
    shown = image_pixels(page, "2D keypoints").astype(int)
    assert shown.shape[:2] == astronaut.shape
    assert (shown.min(2) > 250).mean() < 0.2  # clipped to 8 bits, 86 % of it was white
    assert np.median(np.abs(shown.mean(2) - astronaut)) < 8

    rgba = np.dstack([np.asarray(Image.open(ROOT / "assets" / "examples" / "astronaut.jpg").convert("RGB")),
                      np.full(astronaut.shape, 255, np.uint8)])
    rgba[:, :100, 3] = 0  # a transparent band on the left
    see_through = tmp_path / "see_through.png"
    Image.fromarray(rgba).save(see_through)
    page.reload()
    page.get_by_role("button", name="Analyse").wait_for(timeout=60000)
    upload(page, see_through)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("person(s) on CPU").wait_for(timeout=90000)
    shown = image_pixels(page, "2D keypoints").astype(int)
    assert (shown[:, 5:90].min(2) > 240).mean() > 0.95  # the transparent band, on white


def test_body_model_and_model_tabs(page):
    page.get_by_role("tab", name="Body model").click()
    plot = block(page, "Front and side").locator("img")
    plot.first.wait_for(timeout=60000)
    page.screenshot(path=str(SCREENSHOTS / "app_body_model_tab.jpg"), full_page=True, type="jpeg", quality=80)
    page.get_by_role("tab", name="Model", exact=True).click()
    description = page.get_by_text("PARE from").first
    description.wait_for(timeout=10000)
    started_with = description.inner_text().split("PARE from ")[1].split(",")[0]
    assert page.get_by_text("SMPL_NEUTRAL.pkl").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "app_model_tab.jpg"), full_page=True, type="jpeg", quality=80)

    # Switch to the other network and back, without a restart.
    checkpoint = page.get_by_label("Checkpoint")
    for name in ("untrained_test.pt", None):
        checkpoint.click()
        options = page.get_by_role("option")
        options.first.wait_for(timeout=10000)
        labels = [options.nth(i).inner_text().split("\n")[-1].strip() for i in range(options.count())]  # no "✓"
        assert "untrained_test.pt" in labels
        target = name or next(label for label in labels if label != "untrained_test.pt")
        page.get_by_role("option", name=target, exact=True).click()
        page.get_by_role("button", name="Load", exact=True).click()
        expected = "untrained_test.pt" if name else started_with
        page.get_by_text(f"PARE from {expected},").first.wait_for(timeout=60000)

    # The flip test is on by default; its switch is told in the model's description at once.
    flip_test = page.get_by_label("Flip test", exact=False)
    assert flip_test.is_checked()
    for state in ("off", "on"):
        flip_test.click()
        page.get_by_text(f"flip test {state},").first.wait_for(timeout=10000)
    fit = page.get_by_label("Fit to attention", exact=False)
    assert fit.is_checked()
    for state in ("off", "on"):
        fit.click()
        page.get_by_text(f"fit to attention {state},").first.wait_for(timeout=10000)


def test_only_gradio_outputs_are_served(app_url):
    """Files of the repository, the user's runs or the system are never served."""
    import urllib.error

    for path in (ROOT / "app.py", ROOT / "assets" / "checkpoints" / "pare_bundled.pt", Path("/etc/passwd"),
                 "assets/examples/astronaut.jpg", "../../../etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{app_url}gradio_api/file={path}", timeout=10)
        assert refused.value.code in (403, 404)


def test_explorer_shows_errors_of_a_bundled_sample_frame(page):
    import re

    page.get_by_role("tab", name="3DPW explorer").click()
    metrics = page.get_by_text(re.compile(r"frame \d+, person 1:.*PA-MPJPE \d+\.\d mm"))
    metrics.first.wait_for(timeout=90000)
    overlay = image_pixels(page, "Ground truth and prediction")
    assert overlay.ndim == 3 and overlay.shape[0] > 100
    assert page.locator(".js-plotly-plot").count() >= 2  # per-joint errors and the 3D keypoints

    page.get_by_role("button", name="Errors over the whole sequence").click()
    choices = page.get_by_label(re.compile(r"frame \d+: \d+\.\d mm"))
    choices.first.wait_for(timeout=120000)
    shown = int(re.search(r"frame (\d+), person 1:", metrics.first.inner_text()).group(1))
    frames = [int(re.search(r"frame (\d+):", choices.nth(i).locator("xpath=..").inner_text()).group(1))
              for i in range(choices.count())]
    assert len(frames) >= 5
    other = next(i for i, f in enumerate(frames) if f != shown)  # clicking must move to another frame
    choices.nth(other).check()
    page.get_by_text(re.compile(rf"frame {frames[other]}, person 1:")).first.wait_for(timeout=60000)

    page.get_by_role("button", name="Occlusion sensitivity of this frame").click()
    occlusion = "Occlusion sensitivity: how much the error grows when a grey patch hides each spot"
    block(page, occlusion).locator("img").first.wait_for(timeout=120000)
    assert image_pixels(page, occlusion).std() > 5
    page.screenshot(path=str(SCREENSHOTS / "app_explorer_tab.jpg"), full_page=True, type="jpeg", quality=80)

    # A folder that is no 3DPW download: the page says what layout it expects.
    page.get_by_label("Dataset root").fill("/nonexistent/3DPW")
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_text("/nonexistent/3DPW does not exist. Expected ROOT/sequenceFiles").first.wait_for(timeout=30000)


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 8.0) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (w, h))  # plays in Chromium
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_tab_returns_a_playable_clip_and_explains_an_empty_one(page, tmp_path):
    import re

    from skimage.data import astronaut

    page.get_by_role("tab", name="Video").click()
    photo = astronaut()[::2, ::2]  # 256 x 256
    clip = write_clip(tmp_path / "walk.webm", [np.roll(photo, 6 * i, axis=1) for i in range(8)])
    block(page, "Clip").locator("input[type=file]").set_input_files(str(clip))
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Process video").click()
    page.get_by_text(re.compile(r"(person|people) tracked")).first.wait_for(timeout=180000)
    video = block(page, "Meshes over the clip").locator("video").first
    video.wait_for(timeout=30000)
    # Chromium decodes it: the clip's length is known and a frame has been shown.
    page.wait_for_function("(v) => v.readyState >= 2 && v.duration > 0.5", arg=video.element_handle(), timeout=30000)
    for name in ("walk_pare_frames.npz", "walk_pare_frames.json"):
        page.locator(f"a[download='{name}']").first.wait_for(state="attached", timeout=10000)
    page.screenshot(path=str(SCREENSHOTS / "app_video_tab.jpg"), full_page=True, type="jpeg", quality=80)

    blank = write_clip(tmp_path / "empty_room.webm", [np.full((240, 320, 3), 90, np.uint8)] * 6)
    block(page, "Clip").locator("button[aria-label*='Clear'], button[title*='Clear']").first.click()
    block(page, "Clip").locator("input[type=file]").set_input_files(str(blank))
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Process video").click()
    page.get_by_text("No person found in any frame").first.wait_for(timeout=120000)


def test_webcam_tab_streams_from_the_fake_camera(page):
    import re

    page.get_by_role("tab", name="Webcam").click()
    camera = block(page, "Camera")
    camera.get_by_text("Click to Access Webcam").click()
    # Start streaming only once the fake camera's video plays: a click before that can be lost.
    camera.locator("video").first.wait_for(timeout=30000)
    page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2)",
                           timeout=30000)
    camera.get_by_role("button", name="capture photo").click()  # start streaming
    status = page.get_by_text(re.compile(r"\d+\.\d fps"))
    status.first.wait_for(timeout=120000)
    # The fake camera's pattern moves, so the results differ over time. The moving part is
    # small, so count the pixels that clearly changed (not the mean change, which JPEG noise
    # and a short interval can both keep below any fixed bar), and give it up to 20 s.
    seen, moved = [], 0.0
    for _ in range(40):
        source = block(page, "Live result").locator("img").first.get_attribute("src")
        if source and source not in seen:
            seen.append(source)
            if len(seen) >= 3:  # compare only when a new result came in
                first, last = (image_pixels_from(page, src) for src in (seen[0], seen[-1]))
                assert first.shape == last.shape
                moved = float((np.abs(first.astype(int) - last).max(-1) > 40).mean())
                if moved > 0.001:
                    break
        page.wait_for_timeout(500)
    assert len(seen) >= 3 and moved > 0.001
    page.screenshot(path=str(SCREENSHOTS / "app_webcam_tab.jpg"), full_page=True, type="jpeg", quality=80)


def test_image_tab_bad_inputs_give_messages_and_a_huge_photo_works(page, tmp_path):
    page.reload()
    page.get_by_role("tab", name="Image").click()
    analyse = page.get_by_role("button", name="Analyse")
    analyse.wait_for(timeout=60000)
    analyse.click()  # nothing uploaded
    page.get_by_text("Please upload an image first").first.wait_for(timeout=30000)

    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((10, 10, 3), 200, np.uint8)).save(tiny)
    upload(page, tiny)
    analyse.click()
    page.get_by_text("10x10 pixels: too small").first.wait_for(timeout=30000)

    # A 60-megapixel photo: analysed on a downscaled copy, drawn at display size.
    huge = tmp_path / "huge.jpg"
    ramp = np.linspace(0, 255, 10000, dtype=np.uint8)
    Image.fromarray(np.stack(np.broadcast_arrays(ramp[None, :], ramp[:6000, None], 128 * np.ones((1, 1), np.uint8)),
                             axis=2)).save(huge, quality=80)
    page.reload()
    page.get_by_role("button", name="Analyse").wait_for(timeout=60000)
    upload(page, huge)
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("person(s) on CPU").first.wait_for(timeout=120000)
    overlay = image_pixels(page, "Mesh overlay")
    assert max(overlay.shape[:2]) == 1600 and overlay.shape[0] == 960
