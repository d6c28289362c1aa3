"""Measured figures a pare-demo checkpoint carries in its meta (the app's Model tab shows them):
held-out test results, the bundled sample set's and the real-photo dev set's. Shared by
training.export and training.average; no Lightning import, so averaging stays light."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

TEST_KEYS = ("mpjpe", "pa_mpjpe", "pve", "num_frames", "dataset_root", "split", "flip_test", "fit",
             "ground_truth_body_models")


class FiguresError(ValueError):
    """A results file is missing, not JSON, or not the output it should be."""


def add_figure_options(parser: argparse.ArgumentParser) -> None:
    """--test-json, --sample-json and --photos-json."""
    parser.add_argument("--test-json", type=Path, default=None,
                        help="training.evaluate --json output for these weights")
    parser.add_argument("--sample-json", type=Path, default=None,
                        help="training.evaluate --json output on the bundled sample set (assets/samples)")
    parser.add_argument("--photos-json", type=Path, default=None,
                        help="training.evaluate_photos --out output for these weights")


def figures_meta(test_json: Path | None, sample_json: Path | None, photos_json: Path | None) -> dict:
    """The checkpoint meta entries ('test', 'sample_set', 'photos') for the given result files."""
    extra = {}
    try:
        if test_json:
            extra["test"] = _evaluation(test_json)
        if sample_json:
            extra["sample_set"] = _evaluation(sample_json)
        if photos_json:
            results = _read(photos_json)
            extra["photos"] = {"overall": results["overall"], "checkpoint": results["config"]["checkpoint"]}
    except KeyError as missing:
        raise FiguresError(f"a results file lacks {missing}: is it the right command's output?") from None
    return extra


def _evaluation(path: Path) -> dict:
    results = _read(path)
    if "pa_mpjpe" not in results:
        raise FiguresError(f"{path} is not training.evaluate --json output (no 'pa_mpjpe')")
    return {k: results[k] for k in TEST_KEYS if k in results}


def _read(path: Path) -> dict:
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FiguresError(f"cannot read {path}: {error}") from None
    if not isinstance(results, dict):
        raise FiguresError(f"{path} holds no results object")
    return results
