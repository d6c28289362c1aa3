"""Speed and memory of every stage, per backbone and inference path, on this machine.

    python -m pare_demo.benchmark [--quick | --smoke] [--json OUT] [--device D]

For each backbone (blazepose = the bundled weights; mobilenetv3, resnet50 and hrnet_w32
untrained, seeded) and each inference path (`torch` = PyTorch eager fp32, `optimized` =
pare_demo.optimize, `onnx` = ONNX Runtime), on a 640x480 photo of one person:

- median and p90 ms of each stage (decode, detect, crop, refine, network, fit, body model,
  camera, render overlay, heatmaps) with 1 and with 8 people (network batch 2 and 16: the flip
  test);
- the webcam path (pare_demo.app.live, mesh overlay) end to end: mean ms including the
  detector every few frames, and fps;
- speed-ups against eager fp32 measured in the same run (paths are interleaved, so a
  busy machine slows them alike).

Every predictor runs as the app's does, with the flip test (each crop and its mirror
image: network batch 2 per person); for the default model the network and the whole
predictor are also timed with the flip test off and on, taking turns.

Then: peak resident memory with the default model loaded, the memory drift over
webcam frames, and the rendering figures. The full run takes about five minutes on 2
cores, `--quick` about one (plus ONNX exports the first time); `--smoke` is the test
suite's half-minute version (the default model and hrnet_w32 at 64 px, one repeat, one
PyTorch thread), which still writes every field.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import resource
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pare_demo.optimize import usable_cores
from pare_demo.timing import StageTimer

BACKBONES = ("blazepose", "mobilenetv3", "resnet50", "hrnet_w32")
PATHS = ("torch", "optimized", "onnx")   # eager fp32 first: the reference for speed-ups
STAGES = ("decode", "detect", "crop", "refine", "network", "fit", "body_model", "camera", "render_overlay",
          "heatmaps")
HEATMAP_PART = "left_wrist"


@dataclass(frozen=True)
class Settings:
    repeats: int          # pipeline runs with 1 person (after one warm-up run)
    repeats_batch8: int   # pipeline runs with 8 people
    live_frames: int      # webcam frames per backbone and path (a multiple of LiveSession.detect_every)
    memory_frames: int    # webcam frames for the memory drift
    render_repeats: int
    backbones: tuple[str, ...] = BACKBONES
    input_size: dict = dataclasses.field(default_factory=dict)  # per-backbone crop side override
    threads: int | None = None  # PyTorch threads; None: its default, one per core


MODES = {
    "full": Settings(20, 5, 90, 500, 20),
    "quick": Settings(5, 2, 15, 100, 3),
    # One thread: on a busy machine, two threads wait on each other at every operation.
    "smoke": Settings(1, 1, 2, 10, 1, ("blazepose", "hrnet_w32"), {"hrnet_w32": 64}, threads=1),
}


def timed(fn, repeats: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return summary(samples)


def summary(samples_ms) -> dict[str, float]:
    return {"median_ms": float(np.median(samples_ms)), "p90_ms": float(np.percentile(samples_ms, 90))}


def machine(device: torch.device) -> dict:
    return {"cores": os.cpu_count(), "cores_usable": usable_cores(),
            "torch_threads": torch.get_num_threads(), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}


def rss_mb() -> float:
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def webcam_frame() -> np.ndarray:
    """A 640x480 webcam-sized photo of one person (scikit-image's astronaut)."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)


def checkpoint_for(backbone: str, input_size: int | None) -> Path:
    """The bundled weights for their backbone; otherwise a seeded untrained network, saved
    once in the cache (the same file each run, so its ONNX export is cached too)."""
    from pare_demo import paths
    from pare_demo.checkpoints import load_checkpoint, save_checkpoint
    from pare_demo.models import PARE, default_config

    if input_size is None and load_checkpoint(paths.BUNDLED_CHECKPOINT)["config"]["backbone"] == backbone:
        return paths.BUNDLED_CHECKPOINT
    config = default_config(backbone)
    config = dataclasses.replace(config, input_size=input_size or config.input_size)
    path = paths.cache_dir() / "benchmark" / f"{backbone}-{config.input_size}.pt"
    if not path.exists():
        torch.manual_seed(0)
        model = PARE(config)
        with torch.no_grad():  # a camera scale near 1: the body lands in front of the camera
            model.head.cam_regressor.weight.mul_(0.01)
            model.head.cam_regressor.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
        save_checkpoint(path, config.to_dict(), model.state_dict(), {"note": "untrained, for timing"})
    return path


class Crowd:
    """The real detector, then its first person repeated `people` times side by side:
    `people` crops through every later stage."""

    def __init__(self, detector, people: int):
        self.detector, self.people, self.name = detector, people, detector.name

    def __call__(self, image, boxes=None, fast: bool = False):
        from pare_demo.detect import Detection

        first = self.detector(image, boxes, fast=fast)[0]
        return [Detection(first.box + [8.0 * i, 0, 8.0 * i, 0], first.score, first.source)
                for i in range(self.people)]


def pipeline_once(predictor, renderer, frame: np.ndarray) -> dict[str, float]:
    """ms per stage for one frame: the predictor's stages, the mesh overlay and one part's heatmap."""
    from pare_demo.app.live import part_heatmap
    from pare_demo.render import people_meshes

    result = predictor.predict(frame)
    timer = StageTimer()
    with timer.stage("render_overlay"):
        renderer.overlay(frame, people_meshes(result.people, predictor.faces()), result.focal_length)
    with timer.stage("heatmaps"):
        part_heatmap(frame, result.people, HEATMAP_PART)
    # A stage the predictor skips (refine, for a backbone without landmarks) costs 0 ms.
    return {**{k: result.timings.get(k, 0.0) for k in STAGES}, **timer.ms}


def bench_backbone(predictors: dict, renderer, frame: np.ndarray, settings: Settings) -> dict:
    """Stages with 1 and 8 people and the webcam path, for every path; paths take turns."""
    from pare_demo.app.live import LiveSession

    out = {path: {} for path in predictors}
    for people, repeats in ((1, settings.repeats), (8, settings.repeats_batch8)):
        samples = {path: defaultdict(list) for path in predictors}
        for rep in range(1 + repeats):  # the first run warms up
            for path, predictor in predictors.items():
                real = predictor.detector
                predictor.detector = Crowd(real, people)
                try:
                    timings = pipeline_once(predictor, renderer, frame)
                finally:
                    predictor.detector = real
                for stage, ms in timings.items():
                    if rep:
                        samples[path][stage].append(ms)
        for path in predictors:
            out[path][f"batch{people}"] = {s: summary(samples[path][s]) for s in STAGES}
    sessions = {path: LiveSession(p, renderer) for path, p in predictors.items()}
    frame_ms = {path: [] for path in predictors}
    for _ in range(settings.live_frames):
        for path, session in sessions.items():
            start = time.perf_counter()
            session.process(frame, draw=("mesh",))
            frame_ms[path].append((time.perf_counter() - start) * 1000)
    for path, ms in frame_ms.items():
        mean = float(np.mean(ms))  # includes the detector's share
        out[path]["webcam"] = {"end_to_end_ms": mean, "fps": 1000 / mean, "frames": len(ms),
                               "detector_runs": sessions[path].detector_runs, **summary(ms)}
    return out


def speedups(paths: dict) -> dict:
    """Each path's speed-up over eager fp32 (`torch`) in this run: network with 1 and 8
    people, and the webcam path end to end."""
    def figures(r):
        return {"network_batch1": r["batch1"]["network"]["median_ms"],
                "network_batch8": r["batch8"]["network"]["median_ms"],
                "webcam": r["webcam"]["end_to_end_ms"]}
    eager = figures(paths["torch"])
    return {path: {k: eager[k] / v for k, v in figures(r).items()}
            for path, r in paths.items() if path != "torch"}


def bench_flip_test(predictor, frame: np.ndarray, repeats: int) -> dict:
    """Median ms of the network and of the whole predictor (one person) with the flip test
    off and on, taking turns."""
    samples = {state: defaultdict(list) for state in ("off", "on")}
    saved = predictor.flip_test
    try:
        for rep in range(1 + repeats):  # the first run warms up
            for state in samples:
                predictor.flip_test = state == "on"
                timings = predictor.predict(frame).timings
                if rep:
                    samples[state]["network"].append(timings["network"])
                    samples[state]["predictor"].append(sum(timings.values()))
    finally:
        predictor.flip_test = saved
    return {f"{stage}_ms_{state}": float(np.median(ms)) for state, stages in samples.items()
            for stage, ms in stages.items()}


def bench_memory(predictor, renderer, frame: np.ndarray, frames: int) -> dict:
    """Resident memory across webcam frames, every layer toggled on and off in turn."""
    from pare_demo.app.live import LiveSession

    session = LiveSession(predictor, renderer)
    views = [("mesh",), ("mesh", "keypoints"), ("heatmap",), ("mesh", "keypoints", "heatmap")]
    warmup = min(10, frames)
    for i in range(warmup):
        session.process(frame, draw=views[i % len(views)])
    start = rss_mb()
    for i in range(frames):
        session.process(frame, draw=views[i % len(views)])
    end = rss_mb()
    return {"frames": frames, "rss_start_mb": start, "rss_end_mb": end, "drift_mb": end - start}


def bench_rendering(repeats: int) -> dict:
    from pare_demo import exports, visualize
    from pare_demo.body import load_body_model
    from pare_demo.geometry import GL_FLIP
    from pare_demo.render import MeshToRender, Renderer

    model = load_body_model("open")
    with torch.no_grad():
        verts = model().vertices[0].numpy() @ GL_FLIP.T
    faces = np.asarray(model.faces, np.int64)
    renderer = Renderer()
    out = {"platform": renderer.platform}
    for w, h in ((640, 480), (1280, 720)):
        image = np.full((h, w, 3), 100, np.uint8)
        for people in (1, 3):
            meshes = [MeshToRender(verts + [0.7 * (i - 1), 0, 5.0 + i], faces) for i in range(people)]
            focal = 1.2 * w
            out[f"overlay_{w}x{h}_{people}p"] = timed(lambda: renderer.overlay(image, meshes, focal), repeats)
    meshes = [MeshToRender(verts + [0, 0, 5.0], faces)]
    out["side_view_480"] = timed(lambda: renderer.side_view(meshes), repeats)
    image = np.full((480, 640, 3), 100, np.uint8)
    maps = np.random.default_rng(0).random((24, 480, 640)).astype(np.float32)
    out["attention_grid_640x480"] = timed(lambda: visualize.attention_grid(image, maps), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        out["glb_export"] = timed(lambda: exports.export_glb(verts, faces, Path(tmp) / "m.glb"), repeats)
    renderer.close()
    return out


def run(settings: Settings, device: torch.device) -> dict:
    from pare_demo.optimize import torch_threads

    # Restored afterwards: the thread count changes which kernels PyTorch picks, and so
    # the last bits of the results of whatever runs next in this process.
    with torch_threads(settings.threads):
        return _run(settings, device)


def _run(settings: Settings, device: torch.device) -> dict:
    from pare_demo.detect import PersonDetector
    from pare_demo.predictor import Predictor, default_backend
    from pare_demo.render import Renderer

    frame = webcam_frame()
    renderer = Renderer()
    detector = PersonDetector()
    result: dict = {"machine": machine(device), "backbones": {}}
    for i, backbone in enumerate(settings.backbones):
        checkpoint = checkpoint_for(backbone, settings.input_size.get(backbone))
        start = time.perf_counter()
        predictors = {path: Predictor(checkpoint, device=device, backend=path, detector=detector)
                      for path in PATHS}
        load_s = time.perf_counter() - start
        paths = bench_backbone(predictors, renderer, frame, settings)
        result["backbones"][backbone] = {
            "checkpoint": checkpoint.name, "input_size": predictors["torch"].config.input_size,
            "load_s_all_paths": load_s, "paths": paths, "speedup_vs_eager": speedups(paths)}
        if i == 0:  # the default model: the app's figures
            fastest = min(PATHS, key=lambda p: paths[p]["webcam"]["end_to_end_ms"])
            webcam = paths[fastest]["webcam"]
            result["default"] = {
                "backbone": backbone, "checkpoint": checkpoint.name, "path": fastest,
                "predictor_default_backend": default_backend(device), "frame": "640x480, 1 person",
                "end_to_end_ms": webcam["end_to_end_ms"], "fps": webcam["fps"],
                "network_ms": paths[fastest]["batch1"]["network"]["median_ms"]}
            result["flip_test"] = bench_flip_test(predictors[fastest], frame, settings.repeats)
            result["memory"] = bench_memory(predictors[fastest], renderer, frame, settings.memory_frames)
            result["live_memory_drift_mb"] = result["memory"]["drift_mb"]
            # The app's process with the default model loaded (before any other backbone).
            result["peak_rss_mb"] = peak_rss_mb()
        del predictors
        gc.collect()
    renderer.close()
    if "hrnet_w32" in result["backbones"]:
        hrnet = result["backbones"]["hrnet_w32"]
        network = {p: r["batch1"]["network"]["median_ms"] for p, r in hrnet["paths"].items()}
        fastest = min(network, key=network.get)
        result["hrnet_w32"] = {"input_size": hrnet["input_size"], "eager_ms": network["torch"],
                               "fastest_ms": network[fastest], "fastest_path": fastest,
                               "speedup": network["torch"] / network[fastest]}
    result["render"] = bench_rendering(settings.render_repeats)
    result["render_overlay_ms_640x480"] = result["render"]["overlay_640x480_1p"]["median_ms"]
    result["peak_rss_mb_all_backbones"] = peak_rss_mb()
    return result


def print_report(result: dict) -> None:
    m = result["machine"]
    print(f"machine: {m['cores']} cores ({m['cores_usable']} usable), {m['cpu']}, device {m['device']}, "
          f"torch {m['torch']} with {m['torch_threads']} threads")
    for backbone, b in result["backbones"].items():
        paths = b["paths"]
        print(f"\n{backbone} ({b['checkpoint']}, {b['input_size']} px), median ms  [p90]")
        print(f"{'stage':16s}" + "".join(f"{p + ' batch ' + n:>20s}" for p in paths for n in ("1", "8")))
        for stage in STAGES:
            cells = "".join(f"{t['median_ms']:>12.1f} [{t['p90_ms']:5.0f}]"
                            for r in paths.values() for t in (r["batch1"][stage], r["batch8"][stage]))
            print(f"{stage:16s}{cells}")
        for path, r in paths.items():
            w = r["webcam"]
            ratio = "" if path == "torch" else "  speed-up vs eager: " + ", ".join(
                f"{k} {v:.2f}x" for k, v in b["speedup_vs_eager"][path].items())
            print(f"webcam {path:10s} {w['end_to_end_ms']:6.1f} ms, {w['fps']:5.1f} fps "
                  f"({w['frames']} frames){ratio}")
    d = result["default"]
    print(f"\ndefault model ({d['backbone']}, {d['path']}): webcam {d['end_to_end_ms']:.1f} ms end to end, "
          f"{d['fps']:.1f} fps, network {d['network_ms']:.1f} ms")
    if "hrnet_w32" in result:
        h = result["hrnet_w32"]
        print(f"hrnet_w32 at {h['input_size']} px: eager {h['eager_ms']:.1f} ms, fastest {h['fastest_path']} "
              f"{h['fastest_ms']:.1f} ms ({h['speedup']:.2f}x)")
    f = result["flip_test"]
    print(f"flip test off / on: network {f['network_ms_off']:.1f} / {f['network_ms_on']:.1f} ms, "
          f"predictor {f['predictor_ms_off']:.1f} / {f['predictor_ms_on']:.1f} ms")
    mem = result["memory"]
    print(f"memory: peak RSS {result['peak_rss_mb']:.0f} MB with the default model "
          f"({result['peak_rss_mb_all_backbones']:.0f} MB after all backbones); drift over "
          f"{mem['frames']} webcam frames {mem['drift_mb']:+.1f} MB")
    print(f"render overlay 640x480: {result['render_overlay_ms_640x480']:.1f} ms")
    for name, t in result["render"].items():
        if isinstance(t, dict):
            print(f"  {name:30s} {t['median_ms']:8.1f} [{t['p90_ms']:6.1f}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pare-demo speed and memory benchmark")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="few iterations (about a minute on 2 cores)")
    mode.add_argument("--smoke", action="store_true", help="every field in seconds: tiny hrnet, one repeat")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    from pare_demo.predictor import pick_device

    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    device = pick_device(args.device)
    start = time.perf_counter()
    result = run(MODES[name], device)
    result["settings"] = {"mode": name, **dataclasses.asdict(MODES[name]),
                          "seconds": time.perf_counter() - start}
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
