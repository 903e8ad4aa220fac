"""Collectives on a topology, against hand calculations, and the monotone physics of groups that
outgrow their scale-up domain."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import Accelerator, load_hardware
from sim.cost import collectives as C
from sim.cost.parallelism import ConfigError, Parallelism
from sim.cost.roofline import RooflineCost
from workloads import load_model

UP, OUT = 450e9, 50e9  # an HGX H100: NVLink per direction, 400 Gb/s NIC
LAT_UP, LAT_OUT = 2e-6, 10e-6


def device(up: dict | None = None, out: dict | None = None) -> Accelerator:
    data = {
        "name": "test",
        "peak_flops": {"bf16": 989e12},
        "memory": [{"name": "hbm", "capacity_bytes": 80e9, "bandwidth_bytes_per_s": 3.35e12}],
    }
    if up is not None:
        data["scale_up"] = up
    if out is not None:
        data["scale_out"] = out
    return Accelerator.model_validate(data)


def load_model_8b():
    return load_model("llama-3.1-8b")


def hgx(domain: int = 8, out_bw: float = OUT) -> Accelerator:
    return device(
        {"bandwidth_bytes_per_s": UP, "latency_s": LAT_UP, "domain_devices": domain},
        {"bandwidth_bytes_per_s": out_bw, "latency_s": LAT_OUT},
    )


def test_two_domain_allreduce_is_the_hierarchical_formula():
    """16 GPUs on two 8-GPU boards: reduce-scatter and all-gather inside each board move 2·7/8 of
    the message over NVLink (14 hops), and each GPU all-reduces its 1/8 shard with its peer on the
    other board over its own NIC, 2·1/2 of 1/8 (2 hops). Its latency is never below the 30 hops
    of a 16-GPU ring inside one domain (60 us > 14 x 2 + 2 x 10 = 48 us)."""
    m = 64e6
    legs = C.all_reduce(hgx(), 16)
    assert [leg.link for leg in legs] == ["scale_up", "scale_out"]
    bandwidth = 2 * 7 / 8 * m / UP + 2 * 1 / 2 * (m / 8) / OUT
    latency = max(14 * LAT_UP + 2 * LAT_OUT, 30 * LAT_UP)
    assert C.seconds(legs, m) == pytest.approx(bandwidth + latency, rel=1e-12)
    slow_nic = device(
        {"bandwidth_bytes_per_s": UP, "latency_s": LAT_UP, "domain_devices": 8},
        {"bandwidth_bytes_per_s": OUT, "latency_s": 50e-6},
    )
    assert C.seconds(C.all_reduce(slow_nic, 16), m) == pytest.approx(bandwidth + 14 * LAT_UP + 2 * 50e-6)


def test_allreduce_inside_a_domain_is_the_plain_ring():
    legs = C.all_reduce(hgx(), 8)
    assert len(legs) == 1 and C.seconds(legs, 1e6) == pytest.approx(2 * 7 / 8 * 1e6 / UP + 14 * LAT_UP)


def test_alltoall_across_two_boards_is_bound_by_the_nic():
    """16 GPUs on two boards, each sending 1/16 of 32 MB to every member: 7/16 stays on its board over
    NVLink (0.0311 ms), 8/16 crosses the NICs (0.32 ms), at once: the NIC part sets the time."""
    m = 32e6
    (leg,) = C.all_to_all(hgx(), 16)
    assert leg.link == "scale_out"
    assert leg.seconds(m) == pytest.approx(8 / 16 * m / OUT + LAT_OUT, rel=1e-12)
    assert 7 / 16 * m / UP < 8 / 16 * m / OUT


def test_alltoall_inside_an_nvl72_rack():
    """64 GB200s inside one 72-GPU NVLink domain: 63/64 of the message over NVLink at 900 GB/s."""
    (leg,) = C.all_to_all(load_hardware("gb200"), 64)
    assert leg.link == "scale_up"
    assert leg.seconds(1e9) == pytest.approx(63 / 64 * 1e9 / 900e9 + 2e-6, rel=1e-12)


def test_torus_allreduce_runs_per_axis():
    """A 4x4 torus, 200 GB/s a chip each way over 4 links (50 GB/s each): a 16-chip all-reduce
    reduce-scatters along axis 0 (2·3/4 of the message over both directions of the closed ring,
    100 GB/s), then along axis 1 on the quarter left (2·3/4·1/4), and gathers back."""
    tpu = device({"bandwidth_bytes_per_s": 200e9, "latency_s": 0.0, "topology": "torus", "torus": [4, 4]})
    legs = C.all_reduce(tpu, 16)
    assert [leg.name for leg in legs] == ["", "axis1"]
    m = 1e8
    assert C.seconds(legs, m) == pytest.approx((1.5 * m + 0.375 * m) / 100e9, rel=1e-12)


def test_torus_line_without_wraparound_uses_one_direction():
    """4 chips along a 16-long axis do not close their ring: one link's bandwidth, not two."""
    tpu = device({"bandwidth_bytes_per_s": 200e9, "latency_s": 0.0, "topology": "torus", "torus": [16, 16]})
    (leg,) = C.all_reduce(tpu, 4)
    assert leg.seconds(1e8) == pytest.approx(2 * 3 / 4 * 1e8 / 50e9, rel=1e-12)


def test_mesh_pair_gets_one_link_of_seven():
    """Two MI300X of a fully connected 8: one 64 GB/s link of the 448 (measured all-reduce bus
    bandwidth 47.7 GB/s on 2 GPUs against 312.9 on 8)."""
    mi = load_hardware("mi300x")
    (two,) = C.all_reduce(mi, 2)
    (eight,) = C.all_reduce(mi, 8)
    assert two.bandwidth_bytes_per_s == pytest.approx(64e9)
    assert eight.bandwidth_bytes_per_s == pytest.approx(448e9)


def test_group_beyond_domain_without_scale_out_names_the_field():
    lonely = device({"bandwidth_bytes_per_s": UP, "domain_devices": 8})
    with pytest.raises(ConfigError, match=r"tp \(16\) spans 2 scale-up domains"):
        RooflineCost(load_model_8b(), lonely, Parallelism(tp=16))


def test_pipeline_hops_cross_domains_where_stages_do():
    """8 stages of 4 GPUs on 8-GPU boards: hops 0-1, 2-3, 4-5, 6-7 stay on a board, 1-2, 3-4, 5-6
    cross."""
    assert C.boundaries_across(hgx().scale_up, 8, 4) == 3
    assert C.boundaries_across(hgx().scale_up, 4, 8) == 3
    assert C.boundaries_across(hgx(domain=72).scale_up, 8, 8) == 0


def test_wide_tp_on_hgx_pays_the_nic_visibly(llama8b):
    br = RooflineCost(llama8b, load_hardware("h100-sxm"), Parallelism(tp=32)).breakdown([1], [100], 1)
    ops = set(br["op"])
    assert "Lattention/dense.allreduce.scale_out" in ops
    one = RooflineCost(llama8b, load_hardware("gb200"), Parallelism(tp=32)).breakdown([1], [100], 1)
    assert not any(op.endswith("scale_out") for op in one["op"])


@settings(deadline=None, max_examples=40)
@given(
    st.sampled_from([2, 4, 8, 16, 32]),
    st.sampled_from([1, 2, 4, 8]),
    st.integers(1, 512),
    st.integers(0, 4096),
)
def test_outgrowing_the_domain_never_speeds_a_step(tp, domain, new, ctx):
    """The same tp group on smaller scale-up domains (so spread over more of them) is never faster,
    and a collective over more domains never takes less time per byte."""
    model = load_model_8b()
    wide = RooflineCost(model, hgx(domain=max(domain, tp)), Parallelism(tp=tp)).step([new], [ctx], 1).total_s
    split = RooflineCost(model, hgx(domain=domain), Parallelism(tp=tp)).step([new], [ctx], 1).total_s
    assert split >= wide * (1 - 1e-12)
    grown = C.seconds(C.all_reduce(hgx(domain=domain), 2 * tp), 1e6)
    assert grown >= C.seconds(C.all_reduce(hgx(domain=domain), tp), 1e6) * (1 - 1e-12)


@settings(deadline=None, max_examples=40)
@given(st.sampled_from([16, 32]), st.floats(10e9, 100e9), st.floats(1.0, 4.0), st.integers(1, 4096))
def test_more_scale_out_bandwidth_never_slows_a_step(tp, out_bw, factor, new):
    model = load_model_8b()
    slow = RooflineCost(model, hgx(out_bw=out_bw), Parallelism(tp=tp)).step([new], [0], 1).total_s
    fast = RooflineCost(model, hgx(out_bw=out_bw * factor), Parallelism(tp=tp)).step([new], [0], 1).total_s
    assert fast <= slow * (1 + 1e-12)
