"""Check the CUDA path end to end and print one table.

    python -m training.gpu_check [--json OUT]

On a GPU: each predictor path (eager fp32, optimised with fp16 autocast, ONNX Runtime)
against eager fp32 on the CPU, within the tolerance of its precision; the app's analysis
of the example photo with the mesh rendered by EGL; a few training steps with 16-bit mixed
precision; and the benchmark's quick run. Without CUDA it says so and exits 0 (the CPU
paths have their own tests). In training/ because it trains; the app never imports it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FP32_TOLERANCE = 1e-3   # relative to the largest value, as the CPU paths are tested
FP16_TOLERANCE = 3e-2   # fp16 autocast keeps about 3 significant digits per operation
COMPARED = ("pose", "betas", "cam_crop", "joints2d")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-9))


def example_photo() -> np.ndarray:
    from pare_demo import paths
    from pare_demo.images import load_image

    return load_image(paths.ASSETS_DIR / "examples" / "astronaut.jpg")


def check_paths(photo: np.ndarray) -> list[dict]:
    """Each CUDA path against eager fp32 on the CPU, on the same boxes."""
    from pare_demo.predictor import Predictor

    reference = Predictor(device="cpu", backend="torch", fit=False)
    boxes = np.stack([p.bbox for p in reference.predict(photo).people])
    expected = reference.predict(photo, boxes=boxes).people[0]
    rows = []
    for backend in ("torch", "optimized", "onnx"):
        predictor = Predictor(device="cuda", backend=backend, fit=False)
        got = predictor.predict(photo, boxes=boxes).people[0]
        times = []
        for _ in range(10):
            start = time.perf_counter()
            predictor.predict(photo, boxes=boxes)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000)
        fp16 = backend == "optimized"
        error = max(relative_error(getattr(got, k), getattr(expected, k)) for k in COMPARED)
        tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
        rows.append({"check": f"predictor {backend}{' (fp16 autocast)' if fp16 else ''} vs CPU fp32",
                     "figure": f"max rel. error {error:.1e} (<= {tolerance:g}); {np.median(times):.1f} ms/image",
                     "ok": error <= tolerance})
    return rows


def check_analysis(photo: np.ndarray) -> dict:
    """The Image tab's analysis on the GPU, the overlay drawn by EGL."""
    from pare_demo.app.analysis import analyse_image
    from pare_demo.predictor import Predictor
    from pare_demo.render import Renderer

    predictor = Predictor(device="cuda")
    renderer = Renderer()
    try:
        start = time.perf_counter()
        analysis = analyse_image(predictor, renderer, photo)
        ms = (time.perf_counter() - start) * 1000
        changed = float((np.abs(analysis.overlay.astype(int) - analysis.image.astype(int)).sum(-1) > 30).mean())
        return {"check": f"app analysis, rendering on {renderer.platform}",
                "figure": f"{ms:.0f} ms, mesh on {changed:.0%} of the overlay", "ok": changed > 0.01}
    finally:
        renderer.close()


def check_training(steps: int = 5) -> dict:
    """A few Lightning steps with 16-bit mixed precision on a tiny synthetic set."""
    import lightning as L

    from pare_demo.models import default_config
    from pare_demo.data.pw3d import read_pw3d
    from training import synth
    from training.datasets import Augmentation, CropDataset
    from training.module import PareTraining

    with tempfile.TemporaryDirectory() as tmp:
        synth.generate(Path(tmp), sequences=1, frames=8, seed=0, size=160, split="train")
        config = default_config("blazepose")
        dataset = CropDataset(read_pw3d(tmp, "train"), config.input_size, Augmentation(), mean=config.mean,
                              std=config.std)
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True)
        module = PareTraining(config.to_dict(), lr=1e-4, backbone_lr_scale=0.0)
        losses = []

        class Record(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                losses.append(float(outputs["loss"]))

        trainer = L.Trainer(accelerator="gpu", devices=1, precision="16-mixed", max_steps=steps, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, callbacks=[Record()],
                            default_root_dir=tmp)
        start = time.perf_counter()
        trainer.fit(module, loader)
        ms = (time.perf_counter() - start) * 1000 / max(len(losses), 1)
    finite = bool(losses) and all(np.isfinite(losses))
    return {"check": "training, 16-bit mixed precision",
            "figure": f"{len(losses)} steps, {ms:.0f} ms/step, loss {losses[0]:.3f} -> {losses[-1]:.3f}"
            if losses else "no step ran", "ok": finite}


def check_benchmark() -> dict:
    from pare_demo.benchmark import MODES, run

    result = run(MODES["quick"], torch.device("cuda"))
    default = result["default"]
    return {"check": "benchmark (quick), default model",
            "figure": f"{default['path']}: network {default['network_ms']:.1f} ms, webcam path "
                      f"{default['end_to_end_ms']:.1f} ms ({default['fps']:.0f} fps)", "ok": True,
            "benchmark": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("No CUDA device here: nothing to check (the CPU paths are covered by the test suite).")
        return 0
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    photo = example_photo()
    rows = []
    checks = {"predictor paths": lambda: check_paths(photo), "app analysis": lambda: [check_analysis(photo)],
              "training": lambda: [check_training()], "benchmark": lambda: [check_benchmark()]}
    for name, check in checks.items():
        try:
            rows += check()
        except Exception as error:  # one failing check must not hide the others' figures
            rows.append({"check": name, "figure": f"failed: {error!r}", "ok": False})
    width = max(len(r["check"]) for r in rows)
    for r in rows:
        print(f"{'ok ' if r['ok'] else 'BAD'}  {r['check']:{width}s}  {r['figure']}")
    if args.json:
        args.json.write_text(json.dumps({"gpu": torch.cuda.get_device_name(0), "rows": rows}, indent=2, default=str))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
