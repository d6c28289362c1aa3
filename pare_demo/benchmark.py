"""Speed of each stage on this machine.

    python -m pare_demo.benchmark [--quick] [--json OUT] [--device D]

Prints a table and optionally writes JSON: network latency per backbone (eager fp32,
batch 1 and 8), rendering (overlay at 640x480 and 1280x720 with one and three people,
side view), attention grid and GLB export. Median and 90th percentile over repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, repeats: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"median_ms": float(np.median(samples)), "p90_ms": float(np.percentile(samples, 90))}


def machine(device: torch.device) -> dict:
    return {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}


def bench_networks(device: torch.device, repeats: int) -> dict:
    from pare_demo.models import PARE, default_config

    out = {}
    for backbone in ("mobilenetv3", "resnet50", "hrnet_w32"):
        model = PARE(default_config(backbone)).to(device).eval()
        row = {}
        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224, device=device)

            def run():
                with torch.inference_mode():
                    model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
            row[f"batch{batch}"] = timed(run, max(2, repeats // (4 if batch == 8 else 1)))
        out[backbone] = row
    return out


def bench_rendering(repeats: int) -> dict:
    from pare_demo import visualize
    from pare_demo.body import load_body_model
    from pare_demo.render import GL_FLIP, MeshToRender, Renderer

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
        out["glb_export"] = timed(lambda: visualize.export_glb(verts, faces, Path(tmp) / "m.glb"), repeats)
    renderer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pare-demo speed benchmark")
    parser.add_argument("--quick", action="store_true", help="few repeats")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    from pare_demo.predictor import pick_device

    device = pick_device(args.device)
    repeats = 3 if args.quick else 20
    result = {"machine": machine(device), "network": bench_networks(device, repeats),
              "render": bench_rendering(repeats)}
    result["render_overlay_ms_640x480"] = result["render"]["overlay_640x480_1p"]["median_ms"]
    print(f"machine: {result['machine']}")
    print(f"{'stage':40s} {'median ms':>10s} {'p90 ms':>10s}")
    for backbone, row in result["network"].items():
        for batch, t in row.items():
            print(f"{'network ' + backbone + ' ' + batch:40s} {t['median_ms']:10.1f} {t['p90_ms']:10.1f}")
    for name, t in result["render"].items():
        if isinstance(t, dict):
            print(f"{name:40s} {t['median_ms']:10.1f} {t['p90_ms']:10.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
