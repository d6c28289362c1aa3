"""The same short training for each backbone, then accuracy and CPU latency side by side:
how the fast backbone of the bundled weights was chosen.

    python -m training.compare_backbones --config training/configs/cpu_synthetic.yaml \
        --test-root ~/pare-runs/synth-test --out ~/pare-runs/compare [--steps 150] [--batch 16]

Every backbone gets the config's data, augmentation, input size and seed, and the same
number of steps; each is then evaluated on the held-out test split and timed (eager fp32,
batch 1, the config's input size). Writes OUT/comparison.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from training.config import ConfigError, load_config

BACKBONES = ("mobilenetv3", "resnet50", "hrnet_w32")


def network_latency_ms(model: torch.nn.Module, input_size: int, repeats: int = 10) -> float:
    """Median ms of one eager fp32 forward at batch 1."""
    x = torch.randn(1, 3, input_size, input_size)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(x)
            if i >= 2:  # the first calls allocate
                times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def compare(config: str, test_root: Path, out: Path, backbones=BACKBONES, steps: int = 150,
            batch: int = 16, every: int = 3, overrides: list[str] | None = None) -> list[dict]:
    from pare_demo.data.pw3d import read_pw3d
    from pare_demo.evaluation import evaluate_samples, summarize
    from pare_demo.predictor import Predictor
    from training import train

    test_samples = read_pw3d(test_root, "test", every=every)
    if not test_samples:
        raise FileNotFoundError(f"no test sequences under {test_root}/sequenceFiles/test")
    rows = []
    for backbone in backbones:
        run_dir = out / backbone
        start = time.perf_counter()
        settings = [f"model.backbone={backbone}", f"train.run_dir={run_dir}", "train.epochs=1",
                    f"train.batch_size={batch}", f"train.samples_per_epoch={steps * batch}", "train.top_k=1"]
        train.run(load_config(config, [*settings, *(overrides or [])]))
        train_minutes = (time.perf_counter() - start) / 60
        # The network alone, as the comparison in the README was measured.
        predictor = Predictor(run_dir / "best.pt", device="cpu", flip_test=False)
        summary = summarize(evaluate_samples(predictor, test_samples, progress=False))
        rows.append({"backbone": backbone, "steps": steps, "batch_size": batch,
                     "input_size": predictor.config.input_size, "train_minutes": train_minutes,
                     "test_frames": summary["num_frames"], "mpjpe": summary["mpjpe"],
                     "pa_mpjpe": summary["pa_mpjpe"], "pve": summary["pve"],
                     "network_ms": network_latency_ms(predictor.model, predictor.config.input_size),
                     "parameters_m": sum(p.numel() for p in predictor.model.parameters()) / 1e6})
        (out / "comparison.json").write_text(json.dumps(rows, indent=2))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| backbone | params (M) | CPU ms / image | train min | MPJPE | PA-MPJPE | PVE |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backbone']} | {r['parameters_m']:.1f} | {r['network_ms']:.0f} | "
                     f"{r['train_minutes']:.1f} | {r['mpjpe']:.1f} | {r['pa_mpjpe']:.1f} | {r['pve']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Same short training per backbone: accuracy vs CPU latency")
    parser.add_argument("--config", required=True)
    parser.add_argument("--test-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--every", type=int, default=3, help="evaluate every n-th test frame")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides for every run")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may follow the options
    out = args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = compare(args.config, args.test_root.expanduser(), out, args.backbones, args.steps, args.batch,
                       args.every, args.overrides)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
