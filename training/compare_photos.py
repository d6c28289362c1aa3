"""Is checkpoint B better than A on the real photos, or is it noise? Compare two
`training.evaluate_photos --out` files person by person.

    python -m training.compare_photos A.json B.json [--json OUT]

On a small set one person can swing an average (a lying woman moved the Human3.6M PA-MPJPE by
8 mm between two neighbouring epochs). For each figure this prints A, B, the difference B - A
and a 95% interval for that difference from a paired bootstrap over people (both checkpoints
scored on the same resampled people, so what both get wrong cancels), then each person whose
figures changed. An interval that contains 0 means these photos cannot tell A and B apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Figure:
    """How one figure is read from a person's row: joints within a threshold (PCK, pooled
    over people by joints) or an error in mm (averaged over the people who have it)."""
    label: str
    kind: str                  # "pck" or "mm"
    block: str = ""            # the row's PCK block
    threshold: str = ""
    key: str = ""              # the row's mm value


FIGURES = (
    Figure("PCK@0.1, detector (missed people wrong)", "pck", "pck_detector", "pck@0.1"),
    Figure("PCK@0.1, annotated boxes", "pck", "pck_annotated_boxes", "pck@0.1"),
    Figure("PCK@0.2, annotated boxes", "pck", "pck_annotated_boxes", "pck@0.2"),
    Figure("attention peaks PCK@0.15", "pck", "attention_peaks", "pck@0.15"),
    Figure("PA-MPJPE mm (people with 3D)", "mm", key="pa_mpjpe_mm"),
    Figure("MPJPE mm (people with 3D)", "mm", key="mpjpe_mm"),
)


class CompareError(ValueError):
    """The two files cannot be compared; the message says why."""


def person_values(rows: list[dict], figure: Figure) -> tuple[np.ndarray, np.ndarray]:
    """(value, weight) per person: for PCK the joints within the threshold and the labelled
    joints (a person the detector missed has none within), for mm the error and 1 (0 where
    the person has no 3D)."""
    values, weights = [], []
    for row in rows:
        if figure.kind == "pck":
            block = row[figure.block]
            fraction = block[figure.threshold] if block and block[figure.threshold] is not None else 0.0
            values.append(round(fraction * row["joints"]))
            weights.append(row["joints"])
        else:
            value = row[figure.key]
            values.append(0.0 if value is None else value)
            weights.append(0 if value is None else 1)
    return np.asarray(values, dtype=float), np.asarray(weights, dtype=float)


def pooled(values: np.ndarray, weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """PCK: joints within over joints; mm: the mean over the people who have it (their weight
    is 1, the others' 0 with value 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return values.sum(axis) / weights.sum(axis)


def compare(a: dict, b: dict, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """Each figure for A and B over the same people, B - A, and its paired-bootstrap 95%
    interval; the people whose figures changed."""
    rows_a, rows_b = a.get("people"), b.get("people")
    if rows_a is None or rows_b is None:
        raise CompareError("a file has no per-person rows: score it again with this version of "
                           "training.evaluate_photos --out")
    ids_a = [(r["image"], r["person"]) for r in rows_a]
    ids_b = [(r["image"], r["person"]) for r in rows_b]
    if ids_a != ids_b:
        raise CompareError(f"the files score different people ({len(ids_a)} and {len(ids_b)}; "
                           "first difference: "
                           f"{next((x, y) for x, y in zip(ids_a + [None], ids_b + [None]) if x != y)})")
    n = len(rows_a)
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    figures, changed = [], {}
    for figure in FIGURES:
        va, wa = person_values(rows_a, figure)
        vb, wb = person_values(rows_b, figure)
        if not wa.any():
            continue
        value_a, value_b = float(pooled(va, wa)), float(pooled(vb, wb))
        deltas = pooled(vb[picks], wb[picks]) - pooled(va[picks], wa[picks])
        low, high = np.nanpercentile(deltas, [2.5, 97.5])
        figures.append({"figure": figure.label, "a": value_a, "b": value_b, "difference": value_b - value_a,
                        "interval95": [float(low), float(high)],
                        "people": int((wa > 0).sum()), "joints": int(wa.sum()) if figure.kind == "pck" else None})
        # Changed as printed: whole joints, whole millimetres.
        for i in np.flatnonzero((np.round(va) != np.round(vb)) & (wa > 0)):
            unit = "joints" if figure.kind == "pck" else "mm"
            changed.setdefault(f"{ids_a[i][0]}#{ids_a[i][1]}", {})[figure.label] = (
                f"{va[i]:.0f} -> {vb[i]:.0f} {unit}")
    return {"a": a["config"].get("checkpoint"), "b": b["config"].get("checkpoint"), "people": n,
            "resamples": resamples, "figures": figures, "changed": changed}


def comparison_table(result: dict) -> str:
    def number(x: float, mm: bool) -> str:
        return f"{x:.1f}" if mm else f"{x:.3f}"

    lines = [f"A: {result['a']}", f"B: {result['b']}", f"{result['people']} people, paired bootstrap "
             f"over people ({result['resamples']} resamples)", "",
             f"{'figure':<40} {'A':>8} {'B':>8} {'B - A':>8}  95% interval of B - A"]
    for f in result["figures"]:
        mm = "mm" in f["figure"]
        low, high = f["interval95"]
        verdict = "" if low <= 0 <= high else ("  B higher" if low > 0 else "  B lower")
        lines.append(f"{f['figure']:<40} {number(f['a'], mm):>8} {number(f['b'], mm):>8} "
                     f"{number(f['difference'], mm):>8}  [{number(low, mm)}, {number(high, mm)}]{verdict}")
    if result["changed"]:
        lines += ["", "people whose figures changed (A -> B):"]
        lines += [f"  {who}: " + "; ".join(f"{k} {v}" for k, v in what.items())
                  for who, what in result["changed"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="compare two real-photo evaluations, person by person")
    parser.add_argument("a", type=Path, help="training.evaluate_photos --out of checkpoint A")
    parser.add_argument("b", type=Path, help="the same for checkpoint B")
    parser.add_argument("--json", type=Path, default=None, help="write the comparison here")
    args = parser.parse_args(argv)
    try:
        result = compare(json.loads(args.a.read_text()), json.loads(args.b.read_text()))
    except (OSError, json.JSONDecodeError, CompareError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(comparison_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
