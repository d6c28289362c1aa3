import json

import numpy as np
import pytest

from training.compare_photos import CompareError, compare, main


def row(image, person, within, joints=12, found=True, pa=None):
    block = {"pck@0.05": within / joints, "pck@0.1": within / joints, "pck@0.2": within / joints}
    return {"image": image, "person": person, "source": "coco", "found": found, "joints": joints,
            "pck_detector": block if found else None, "pck_annotated_boxes": block,
            "attention_peaks": {"pck@0.15": within / joints}, "mpjpe_mm": None if pa is None else pa + 40,
            "pa_mpjpe_mm": pa}


def results(rows, name):
    return {"config": {"checkpoint": name}, "people": rows}


PEOPLE = [("a.jpg", 0, 12, 80.0), ("a.jpg", 1, 9, None), ("b.jpg", 0, 6, 120.0), ("c.jpg", 0, 11, None)]


def test_the_same_scores_differ_by_nothing():
    rows = [row(i, k, w, pa=pa) for i, k, w, pa in PEOPLE]
    out = compare(results(rows, "A"), results(rows, "A"))
    assert out["people"] == 4 and out["changed"] == {}
    for figure in out["figures"]:
        assert figure["difference"] == 0 and figure["interval95"] == [0.0, 0.0]


def test_differences_are_pooled_over_joints_and_people_and_listed_per_person():
    a = [row(i, k, w, pa=pa) for i, k, w, pa in PEOPLE]
    b = [row(i, k, w, pa=pa) for i, k, w, pa in PEOPLE]
    b[1] = row("a.jpg", 1, 7)                        # two joints lost at every threshold
    b[2] = row("b.jpg", 0, 6, pa=150.0)              # 30 mm worse in 3D
    b[3] = row("c.jpg", 0, 11, found=False)          # the detector misses this person
    out = compare(results(a, "A"), results(b, "B"))
    figures = {f["figure"]: f for f in out["figures"]}
    boxes = figures["PCK@0.1, annotated boxes"]
    assert boxes["a"] == pytest.approx(38 / 48) and boxes["difference"] == pytest.approx(-2 / 48)
    assert boxes["joints"] == 48 and boxes["interval95"][0] < -0.01 < boxes["interval95"][1] <= 0
    detector = figures["PCK@0.1, detector (missed people wrong)"]
    assert detector["difference"] == pytest.approx(-13 / 48)   # 2 lost, and 11 for the missed person
    pa = figures["PA-MPJPE mm (people with 3D)"]
    assert (pa["a"], pa["b"], pa["people"]) == (100.0, 115.0, 2) and pa["joints"] is None
    assert out["changed"]["a.jpg#1"]["PCK@0.1, annotated boxes"] == "9 -> 7 joints"
    assert out["changed"]["b.jpg#0"] == {"PA-MPJPE mm (people with 3D)": "120 -> 150 mm",
                                         "MPJPE mm (people with 3D)": "160 -> 190 mm"}
    assert "a.jpg#0" not in out["changed"]


def test_files_of_different_people_or_without_rows_are_refused(tmp_path, capsys):
    a = [row(i, k, w, pa=pa) for i, k, w, pa in PEOPLE]
    with pytest.raises(CompareError, match="per-person rows"):
        compare({"config": {}, "overall": {}}, results(a, "B"))
    paths = []
    for name, rows in (("a", a), ("b", a[:3])):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(results(rows, name)))
    assert main([str(p) for p in paths]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "different people" in err and "Traceback" not in err


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    a = [row(i, k, w, pa=pa) for i, k, w, pa in PEOPLE]
    b = [dict(r) for r in a]
    b[0] = row("a.jpg", 0, 10, pa=80.0)
    paths = []
    for name, rows in (("a", a), ("b", b)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(results(rows, name)))
    out = tmp_path / "cmp.json"
    assert main([str(paths[0]), str(paths[1]), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PCK@0.1, annotated boxes" in printed and "a.jpg#0" in printed
    saved = json.loads(out.read_text())
    assert saved["a"] == "a" and saved["b"] == "b" and np.isclose(saved["figures"][1]["difference"], -2 / 48)
