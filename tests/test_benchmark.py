import json
import math

import pytest
import torch

from pare_demo.benchmark import PATHS, STAGES, main

pytestmark = pytest.mark.slow  # a whole smoke benchmark: every backbone, path and stage


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_smoke_benchmark_writes_every_field(tmp_path):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    assert main(["--smoke", "--json", str(out)]) == 0
    assert torch.get_num_threads() == threads  # the one-thread smoke setting does not leak
    result = json.loads(out.read_text())
    settings = result["settings"]
    assert settings["mode"] == "smoke" and list(result["backbones"]) == settings["backbones"]

    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["device"] == "cpu"
    for backbone in settings["backbones"]:
        b = result["backbones"][backbone]
        assert set(b["paths"]) == set(PATHS) and set(b["speedup_vs_eager"]) == set(PATHS) - {"torch"}
        for path, r in b["paths"].items():
            for batch in ("batch1", "batch8"):
                for stage in STAGES:
                    t = r[batch][stage]
                    assert all(math.isfinite(t[k]) and t[k] >= 0 for k in ("median_ms", "p90_ms")), \
                        (path, batch, stage)
                assert positive(r[batch]["network"]["median_ms"])
            webcam = r["webcam"]
            assert positive(webcam["end_to_end_ms"]) and webcam["frames"] == settings["live_frames"]
            assert 1 <= webcam["detector_runs"] <= webcam["frames"]
        assert all(positive(v) for ratios in b["speedup_vs_eager"].values() for v in ratios.values())

    # The default model's figures are those of its fastest path over the webcam, as recorded.
    default = result["default"]
    assert default["backbone"] == settings["backbones"][0]
    paths = result["backbones"][default["backbone"]]["paths"]
    webcam_ms = {p: r["webcam"]["end_to_end_ms"] for p, r in paths.items()}
    assert default["path"] == min(webcam_ms, key=webcam_ms.get)
    assert default["end_to_end_ms"] == webcam_ms[default["path"]]
    assert default["network_ms"] == paths[default["path"]]["batch1"]["network"]["median_ms"]
    # hrnet_w32's fastest path is the one with the least recorded network time.
    hrnet = result["hrnet_w32"]
    network = {p: r["batch1"]["network"]["median_ms"] for p, r in result["backbones"]["hrnet_w32"]["paths"].items()}
    assert hrnet["eager_ms"] == network["torch"] and hrnet["fastest_path"] == min(network, key=network.get)
    assert hrnet["fastest_ms"] == network[hrnet["fastest_path"]] and positive(hrnet["speedup"])

    assert result["render_overlay_ms_640x480"] == result["render"]["overlay_640x480_1p"]["median_ms"]
    assert positive(result["render_overlay_ms_640x480"]) and positive(result["peak_rss_mb"])
    flip = result["flip_test"]
    assert set(flip) == {f"{stage}_ms_{state}" for stage in ("network", "predictor") for state in ("off", "on")}
    assert all(positive(v) for v in flip.values())
    memory = result["memory"]
    assert memory["frames"] == settings["memory_frames"] and math.isfinite(memory["drift_mb"])
    assert positive(memory["rss_end_mb"])
