import json
import math

import torch

from pare_demo.benchmark import PATHS, STAGES, main


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_smoke_benchmark_writes_every_field(tmp_path):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    assert main(["--smoke", "--json", str(out)]) == 0
    assert torch.get_num_threads() == threads  # the one-thread smoke setting does not leak
    result = json.loads(out.read_text())

    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["device"] == "cpu"
    default = result["default"]
    assert all(positive(default[k]) for k in ("end_to_end_ms", "network_ms", "fps"))
    assert default["path"] in PATHS and abs(default["fps"] * default["end_to_end_ms"] - 1000) < 1e-6
    hrnet = result["hrnet_w32"]
    assert positive(hrnet["eager_ms"]) and positive(hrnet["fastest_ms"]) and hrnet["fastest_path"] in PATHS
    assert hrnet["fastest_ms"] <= hrnet["eager_ms"]
    assert positive(result["render_overlay_ms_640x480"]) and positive(result["peak_rss_mb"])
    flip = result["flip_test"]
    assert set(flip) == {f"{stage}_ms_{state}" for stage in ("network", "predictor") for state in ("off", "on")}
    assert all(positive(v) for v in flip.values())
    memory = result["memory"]
    assert memory["frames"] == 10 and math.isfinite(memory["drift_mb"]) and positive(memory["rss_end_mb"])

    for backbone in ("blazepose", "hrnet_w32"):
        b = result["backbones"][backbone]
        assert set(b["paths"]) == set(PATHS) and set(b["speedup_vs_eager"]) == set(PATHS) - {"torch"}
        for path, r in b["paths"].items():
            for batch in ("batch1", "batch8"):
                for stage in STAGES:
                    t = r[batch][stage]
                    assert 0 <= t["median_ms"] <= t["p90_ms"] < math.inf, (path, batch, stage)
                assert positive(r[batch]["network"]["median_ms"])
            assert positive(r["webcam"]["end_to_end_ms"]) and positive(r["webcam"]["fps"])
            assert r["webcam"]["detector_runs"] >= 1
        assert all(positive(v) for ratios in b["speedup_vs_eager"].values() for v in ratios.values())
