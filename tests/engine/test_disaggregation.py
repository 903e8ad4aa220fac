import pytest

from sim.api import run
from sim.cost.memory import memory_plan
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost
from sim.scenario import scenario_from_dict
from tests.conftest import TINY_HW, TINY_MODEL, disaggregated_cluster


def scenario(cluster, requests=1, rate=1.0, prompt=200, output=20):
    return scenario_from_dict(
        {
            "hardware": TINY_HW,
            "model": TINY_MODEL,
            "cluster": cluster,
            "scheduler": {"max_num_batched_tokens": 256, "max_num_seqs": 16},
            "workload": {
                "arrivals": {"kind": "poisson", "rate_per_s": rate},
                "prompt_tokens": {"kind": "fixed", "tokens": prompt},
                "output_tokens": {"kind": "fixed", "tokens": output},
            },
            "stop": {"requests": requests},
        }
    )


DISAGG = disaggregated_cluster(decode_replicas=1)


def test_kv_transfer_shows_in_ttft_by_hand():
    colocated = run(scenario({"replicas": 1}))
    split = run(scenario(DISAGG))
    sc = scenario(DISAGG)
    token_bytes = memory_plan(sc.model, sc.hardware, Parallelism()).kv_bytes_per_token  # 512 B
    transfer = 1e-3 + 200 * token_bytes / 1e9
    prefill = RooflineCost(sc.model, sc.hardware).step([200], [0], 1).total_s
    assert split.requests.kv_transfer_s[0] == pytest.approx(transfer)
    assert split.requests.ttft_s[0] == pytest.approx(prefill + transfer)
    assert colocated.requests.ttft_s[0] == pytest.approx(prefill)
    assert split.requests.decode_replica[0] == 1 and split.requests.replica[0] == 0
    assert split.summary.kv_transfers == 1 and split.summary.devices == 2


def test_disaggregated_run_keeps_invariants():
    r = run(scenario(DISAGG | {"router": "least_tokens"}, requests=300, rate=80, prompt=150, output=30))
    req = r.requests
    assert req.finish_s.notna().all()
    assert (req.output_tokens == 30).all()
    assert (req.first_token_s <= req.finish_s).all()
    assert (req.kv_transfer_s > 0).all()
    assert r.summary.kv_transfers == 300


def test_single_token_requests_finish_on_the_prefill_pool():
    r = run(scenario(DISAGG, requests=5, output=1))
    assert r.summary.kv_transfers == 0
    assert (r.requests.finish_s == r.requests.first_token_s).all()


def test_pools_must_fit():
    with pytest.raises(ValueError, match="cluster: give replicas, devices or disaggregated"):
        scenario(DISAGG | {"replicas": 2})


def test_colocated_and_disaggregated_compare_in_one_sweep(tmp_path):
    """One sweep, two points over the same workload and the same two devices: the split point pays
    its KV transfer in TTFT, the co-located one pays nothing."""
    from sim.studies.sweep import load_sweep, run_point
    from tests.studies.sweepfiles import write_sweep

    path = write_sweep(tmp_path, list=[{"cluster": {"replicas": 2}}, {"cluster": DISAGG}])
    rows = [run_point(p) for p in load_sweep(path).points]
    colocated, disaggregated = rows
    assert colocated["error"] is None and disaggregated["error"] is None
    assert colocated["devices"] == disaggregated["devices"] == 2
    assert colocated["kv_transfer_mean_s"] == 0 and colocated["kv_transfers"] == 0
    assert disaggregated["kv_transfer_mean_s"] >= 1e-3 and disaggregated["kv_transfers"] > 0
    assert disaggregated["ttft_p50_s"] > disaggregated["kv_transfer_mean_s"]
