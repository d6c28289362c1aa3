import re

import pytest
import torch

from pare_demo.checkpoints import load_checkpoint, save_checkpoint
from training.average import AverageError, average_checkpoints, main, runs_counted

CONFIG = {"backbone": "blazepose", "input_size": 256}


def weights(scale):
    return {"head.w": torch.full((2, 3), scale), "head.bn.running_mean": torch.tensor([scale, 2 * scale]),
            "head.bn.num_batches_tracked": torch.tensor(int(scale * 10))}


def write(tmp_path, name, scale, config=CONFIG, source=None):
    return save_checkpoint(tmp_path / name, config, weights(scale), {"source": source or f"run/phase1/{name}"})


def test_floats_are_averaged_and_integer_counts_come_from_the_last(tmp_path):
    paths = [write(tmp_path, f"e{i}.pt", s) for i, s in enumerate([1.0, 2.0, 6.0])]
    config, state = average_checkpoints([load_checkpoint(p) for p in paths], [str(p) for p in paths])
    assert config == CONFIG
    assert torch.allclose(state["head.w"], torch.full((2, 3), 3.0))
    assert torch.allclose(state["head.bn.running_mean"], torch.tensor([3.0, 6.0]))
    assert state["head.bn.num_batches_tracked"].item() == 60 and not state["head.bn.num_batches_tracked"].is_floating_point()


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


def test_runs_are_counted_in_order_of_appearance():
    assert runs_counted(["r2/p/a", "r1/p/b", "r2/p/c"]) == "r2 x2, r1 x1"


@pytest.mark.parametrize("problem", ["one", "config", "tensors", "shape"])
def test_checkpoints_of_different_networks_are_refused(tmp_path, problem, capsys):
    a = write(tmp_path, "a.pt", 1.0)
    if problem == "one":
        paths, message = [a], "at least two"
    elif problem == "config":
        paths, message = [a, write(tmp_path, "b.pt", 2.0, config={**CONFIG, "input_size": 224})], "another network config"
    elif problem == "tensors":
        extra = dict(weights(2.0), **{"head.extra": torch.zeros(1)})
        paths, message = [a, save_checkpoint(tmp_path / "b.pt", CONFIG, extra)], "different tensors"
    else:
        wide = dict(weights(2.0), **{"head.w": torch.zeros(2, 4)})
        paths, message = [a, save_checkpoint(tmp_path / "b.pt", CONFIG, wide)], "head.w is (2, 4)"
    with pytest.raises(AverageError, match=re.escape(message)):
        average_checkpoints([load_checkpoint(p) for p in paths], [str(p) for p in paths])
    assert main([*map(str, paths), "--out", str(tmp_path / "avg.pt")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "avg.pt").exists()


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    a = write(tmp_path, "a.pt", 1.0)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main([str(a), str(tmp_path / "junk.pt"), "--out", str(tmp_path / "avg.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err
