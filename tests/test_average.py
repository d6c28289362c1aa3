import json
import re
from pathlib import Path

import pytest
import torch

from pare_demo.app.engine import training_summary
from pare_demo.checkpoints import load_checkpoint, save_checkpoint
from training.average import AverageError, average_checkpoints, main, runs_counted

CONFIG = {"backbone": "blazepose", "input_size": 256}


def weights(scale):
    return {"head.w": torch.full((2, 3), scale), "head.bn.running_mean": torch.tensor([scale, 2 * scale]),
            "head.bn.num_batches_tracked": torch.tensor(int(scale * 10))}


def write(tmp_path, name, scale, config=CONFIG, source=None):
    return save_checkpoint(tmp_path / name, config, weights(scale), {"source": source or f"run/phase1/{name}"})


def test_floats_are_averaged_and_integer_counts_come_from_the_last(tmp_path):
    paths = [write(tmp_path, f"e{i}.pt", s) for i, s in enumerate([1.0, 6.0, 2.0])]
    config, state = average_checkpoints([load_checkpoint(p) for p in paths], [str(p) for p in paths])
    assert config == CONFIG
    assert torch.allclose(state["head.w"], torch.full((2, 3), 3.0))
    assert torch.allclose(state["head.bn.running_mean"], torch.tensor([3.0, 6.0]))
    assert state["head.bn.num_batches_tracked"].item() == 20  # the last's, not the largest
    assert not state["head.bn.num_batches_tracked"].is_floating_point()


def test_the_command_writes_a_loadable_checkpoint_that_names_its_sources(tmp_path, capsys):
    a = write(tmp_path, "a.pt", 1.0, source="blazepose_v5/phase1/epoch000.ckpt")
    b = write(tmp_path, "b.pt", 3.0, source="blazepose_v6/phase1/epoch000.ckpt")
    c = write(tmp_path, "c.pt", 5.0, source="blazepose_v6/phase1/epoch001.ckpt")
    assert main([str(a), str(b), str(c), "--out", str(tmp_path / "avg.pt")]) == 0
    out = load_checkpoint(tmp_path / "avg.pt")
    assert torch.allclose(out["state_dict"]["head.w"], torch.full((2, 3), 3.0))
    assert out["meta"]["averaged"] == ["blazepose_v5/phase1/epoch000.ckpt", "blazepose_v6/phase1/epoch000.ckpt",
                                       "blazepose_v6/phase1/epoch001.ckpt"]
    assert out["meta"]["source"] == "uniform average of 3 checkpoints (blazepose_v5 x1, blazepose_v6 x2)"
    assert "average of 3 checkpoints" in capsys.readouterr().out


def test_measured_figures_are_attached_and_shown_by_the_app(tmp_path):
    a, b = write(tmp_path, "a.pt", 1.0), write(tmp_path, "b.pt", 3.0)
    test = {"mpjpe": 98.0, "pa_mpjpe": 63.5, "pve": 124.9, "num_frames": 1230, "split": "test",
            "dataset_root": "/runs/synth2-test", "flip_test": True, "per_sequence": {"s": 1}}
    pck = {"pck@0.1": 0.791}
    photos = {"config": {"checkpoint": "avg.pt"},
              "overall": {"detection": {"people": 21, "found": 19}, "pck_annotated_boxes": pck,
                          "pck_detector_all": {"pck@0.1": 0.782}}}
    (tmp_path / "test.json").write_text(json.dumps(test))
    (tmp_path / "photos.json").write_text(json.dumps(photos))
    assert main([str(a), str(b), "--out", str(tmp_path / "avg.pt"), "--test-json", str(tmp_path / "test.json"),
                 "--photos-json", str(tmp_path / "photos.json")]) == 0
    meta = load_checkpoint(tmp_path / "avg.pt")["meta"]
    assert meta["test"]["pa_mpjpe"] == 63.5 and "per_sequence" not in meta["test"]
    assert meta["photos"]["overall"]["pck_annotated_boxes"] == pck
    summary = training_summary(meta)
    assert "uniform average of 2 checkpoints" in summary and "PA-MPJPE 63.5" in summary
    assert "0.79 (annotated boxes), 0.78 (detector, 19/21 people found)" in summary


def test_runs_are_counted_in_order_of_appearance():
    assert runs_counted(["r2/p/a", "r1/p/b", "r2/p/c", "uniform average of 2 checkpoints (r1 x2)"]) == \
        "r2 x2, r1 x1, uniform average of 2 checkpoints (r1 x2) x1"


def test_an_input_without_a_source_is_named_by_its_folder_and_file(tmp_path):
    a = save_checkpoint(tmp_path / "runs" / "a.pt", CONFIG, weights(1.0))
    b = write(tmp_path, "b.pt", 2.0, source="v6/phase1/b.ckpt")
    assert main([str(a), str(b), "--out", str(tmp_path / "avg.pt")]) == 0
    meta = load_checkpoint(tmp_path / "avg.pt")["meta"]
    assert meta["averaged"] == ["runs/a.pt", "v6/phase1/b.ckpt"] and meta["source"].endswith("(runs x1, v6 x1)")


@pytest.mark.parametrize("problem", ["one", "config", "tensors", "shape", "dtype"])
def test_checkpoints_of_different_networks_are_refused(tmp_path, problem, capsys):
    a = write(tmp_path, "a.pt", 1.0)
    if problem == "one":
        paths, message = [a], "at least two"
    elif problem == "config":
        paths, message = [a, write(tmp_path, "b.pt", 2.0, config={**CONFIG, "input_size": 224})], "another network config"
    elif problem == "tensors":
        extra = dict(weights(2.0), **{"head.extra": torch.zeros(1)})
        paths, message = [a, save_checkpoint(tmp_path / "b.pt", CONFIG, extra)], "different tensors"
    elif problem == "shape":
        wide = dict(weights(2.0), **{"head.w": torch.zeros(2, 4)})
        paths, message = [a, save_checkpoint(tmp_path / "b.pt", CONFIG, wide)], "head.w is (2, 4)"
    else:
        half = dict(weights(2.0), **{"head.w": torch.zeros(2, 3, dtype=torch.float16)})
        paths, message = [a, save_checkpoint(tmp_path / "b.pt", CONFIG, half)], "torch.float16 in"
    with pytest.raises(AverageError, match=re.escape(message)):
        average_checkpoints([load_checkpoint(p) for p in paths], [str(p) for p in paths])
    assert main([*map(str, paths), "--out", str(tmp_path / "avg.pt")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "avg.pt").exists()


@pytest.mark.parametrize("content, message", [(None, "cannot read"), ("{not json", "cannot read"),
                                              ('{"overall": {}}', "lacks 'config'")])
def test_a_bad_results_file_is_a_clear_error_before_any_work(tmp_path, capsys, content, message):
    a, b = write(tmp_path, "a.pt", 1.0), write(tmp_path, "b.pt", 2.0)
    if content is not None:
        (tmp_path / "photos.json").write_text(content)
    assert main([str(a), str(b), "--out", str(tmp_path / "avg.pt"), "--photos-json", str(tmp_path / "photos.json")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "avg.pt").exists()


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    a = write(tmp_path, "a.pt", 1.0)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main([str(a), str(tmp_path / "junk.pt"), "--out", str(tmp_path / "avg.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


def test_averaging_does_not_import_lightning():
    import subprocess
    import sys
    code = "import sys, training.average; print('lightning' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"
