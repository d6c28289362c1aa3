"""What the app's handlers share: one predictor and one renderer, warmed up at start,
switchable to another checkpoint or body model without restarting.

    engine = Engine()                       # bundled weights, open body model
    engine.load("assets/checkpoints/pare_official.pt", "smpl")
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from pare_demo import paths
from pare_demo.body import BodyModelError
from pare_demo.body.model import find_smpl_file
from pare_demo.checkpoints import CheckpointError
# torch (through the predictor) must be loaded before the renderer opens an EGL context:
# the other order crashes the process inside torch's import.
from pare_demo.app.analysis import analyse_image
from pare_demo.predictor import Predictor

BUNDLED = "bundled"
OUTPUT_SLOTS = 16  # download folders kept at once: older requests' files are overwritten


def available_checkpoints(extra: str | Path | None = None) -> dict[str, Path]:
    """Label -> file: the bundled weights, every .pt in the checkpoints folders (the
    repository's and $PARE_CHECKPOINTS_DIR), and `extra`."""
    found = {BUNDLED: paths.BUNDLED_CHECKPOINT} if paths.BUNDLED_CHECKPOINT.is_file() else {}
    for folder in paths.checkpoint_dirs():
        for path in sorted(folder.glob("*.pt")):
            if path != paths.BUNDLED_CHECKPOINT:
                found.setdefault(path.name, path)
    if extra is not None and Path(extra).resolve() not in {p.resolve() for p in found.values()}:
        found[Path(extra).name] = Path(extra)
    return found


def available_body_models() -> list[str]:
    """'open' always; 'smpl' when the user's SMPL file is where pare-demo looks for it."""
    try:
        find_smpl_file()
        return ["open", "smpl"]
    except BodyModelError:
        return ["open"]


class Engine:
    def __init__(self, checkpoint: str | Path | None = None, body_model: str | None = None,
                 device: str = "auto"):
        from pare_demo.render import Renderer

        self.device = device
        self.flip_test = True  # kept across model switches
        self.fit = True
        self.predictor = None
        self.error = None
        self.warmup_ms = 0.0
        self.extra_checkpoint = checkpoint
        self.renderer = Renderer()
        self._lock = threading.Lock()
        self._output_root = Path(tempfile.mkdtemp(prefix="pare_demo_outputs_"))
        self._next_slot = 0
        self._slot_lock = threading.Lock()
        self.load(checkpoint, body_model)

    def load(self, checkpoint: str | Path | None = None, body_model: str | None = None) -> bool:
        """Switch to another network/body model; on failure the current one stays and
        `error` says why. Requests already running finish on the model they started with."""
        with self._lock:
            try:
                predictor = Predictor(checkpoint, body_model=body_model, device=self.device)
                start = time.perf_counter()
                # Warm up now, so that the first user request does not pay for it.
                analyse_image(predictor, self.renderer, np.full((256, 256, 3), 127, np.uint8),
                              out_dir=self.output_dir())
                self.warmup_ms = (time.perf_counter() - start) * 1000
            except (CheckpointError, BodyModelError) as err:
                self.error = str(err)
                return False
            except Exception as err:  # noqa: BLE001 - a file that reads but does not run: keep serving
                name = Path(checkpoint).name if checkpoint else "the bundled weights"
                self.error = f"Could not use {name}: {type(err).__name__}: {err}"
                return False
            predictor.flip_test = self.flip_test  # read now: it may have been switched during the load
            predictor.fit = self.fit
            self.predictor, self.error = predictor, None
            return True

    def set_flip_test(self, on: bool) -> None:
        """Flip test on or off, for this model and the ones loaded later."""
        self.flip_test = bool(on)
        if self.predictor is not None:
            self.predictor.flip_test = self.flip_test

    def set_fit(self, on: bool) -> None:
        """The fit to the attention keypoints on or off, for this model and later ones."""
        self.fit = bool(on)
        if self.predictor is not None:
            self.predictor.fit = self.fit

    def output_dir(self) -> Path:
        """A folder for one request's downloads. Gradio copies returned files into its own
        cache, so a few rotating folders suffice and nothing piles up in /tmp."""
        with self._slot_lock:
            slot = self._output_root / f"{self._next_slot % OUTPUT_SLOTS:02d}"
            self._next_slot += 1
        shutil.rmtree(slot, ignore_errors=True)
        slot.mkdir(parents=True)
        return slot

    def close(self) -> None:
        shutil.rmtree(self._output_root, ignore_errors=True)
        self.renderer.close()

    def describe(self) -> str:
        if self.predictor is None:
            return f"**No network loaded.** {self.error}"
        trained = training_summary(self.predictor.meta)
        note = f"\n\n**Could not switch:** {self.error}" if self.error else ""
        return (f"**Model:** {self.predictor.description}.{' ' + trained if trained else ''} "
                f"Warm-up took {self.warmup_ms:.0f} ms.{note}")


def training_summary(meta: dict) -> str:
    """What a checkpoint's meta says about its training and held-out accuracy, in a line."""
    parts = []
    if meta.get("source"):
        step = f" at step {meta['step']:,}" if "step" in meta else ""
        parts.append(f"Trained: {meta['source']}{step}")
    if "val_pa_mpjpe_mm" in meta:
        parts.append(f"validation PA-MPJPE {meta['val_pa_mpjpe_mm']:.1f} mm")
    test = meta.get("test")
    if test:
        where = Path(test["dataset_root"]).name + f" ({test['split']})" if "dataset_root" in test else "held-out set"
        pve = f", PVE {test['pve']:.1f}" if test.get("pve") is not None else ""
        flip = {True: " with the flip test", False: " without the flip test"}.get(test.get("flip_test"), "")
        parts.append(f"on {where}, {test['num_frames']:,} frames{flip}: MPJPE {test['mpjpe']:.1f}, "
                     f"PA-MPJPE {test['pa_mpjpe']:.1f}{pve} mm")
    photos = (meta.get("photos") or {}).get("overall")
    if photos:
        found = photos["detection"]
        parts.append(f"on the real-photo dev set: PCK@0.1 {photos['pck_annotated_boxes']['pck@0.1']:.2f} "
                     f"(annotated boxes), {photos['pck_detector_all']['pck@0.1']:.2f} (detector, "
                     f"{found['found']}/{found['people']} people found)")
    return "; ".join(parts) + "." if parts else ""
