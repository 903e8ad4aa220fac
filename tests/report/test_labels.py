"""The one label/format table every axis, dropdown, table header and cell reads through."""

import numpy as np
import pytest

from sim.engine.summary import FIELDS
from sim.report import labels


@pytest.mark.parametrize(
    ("key", "value", "label", "text"),
    [
        ("ttft_p99_s", 0.009532, "TTFT p99", "9.53 ms"),
        ("tpot_p50_s", 0.0000123, "TPOT p50", "12.3 µs"),
        ("e2e_p99_s", 15.04, "end to end p99", "15.0 s"),
        ("hardware.memory.hbm.bandwidth_bytes_per_s", 2e12, "HBM bandwidth", "2 TB/s"),
        ("hardware.memory.hbm.bandwidth_bytes_per_s", 3.35e12, "HBM bandwidth", "3.35 TB/s"),
        ("hardware.peak_flops.bf16", 989e12, "peak bf16 compute", "989 TFLOP/s"),
        ("slo_attainment", 0.87, "SLO attainment", "87.0%"),
        ("cost_per_1m_output_tokens_usd", 0.1362, "cost per 1M output tokens", "$0.136"),
        ("cost_per_hour_usd", 7.782, "cost per hour", "$7.78"),
        ("throughput_rps", 11.93, "throughput", "11.93 req/s"),
        ("workload.arrivals.rate_per_s", 6.0, "arrival rate", "6 req/s"),
        ("output_tokens_per_s", 3774.2, "output token rate", "3,774 tokens/s"),
        ("requests_finished", 5000, "requests finished", "5,000"),
        ("parallelism.tp", np.int64(4), "tensor parallel (tp)", "4"),
        ("hardware", "h100-sxm", "hardware", "h100-sxm"),
        ("steady_state", True, "steady state", "yes"),
        ("ttft_p99_ci_lo_s", 0.29, "TTFT p99, interval low", "290 ms"),
        ("throughput_ci_hi_rps", 12.41, "throughput, interval high", "12.41 req/s"),
        ("ttft_p99_s", None, "TTFT p99", "—"),
        ("ttft_p99_s", float("nan"), "TTFT p99", "—"),
    ],
)
def test_labels_and_values_read_as_people_write_them(key, value, label, text):
    assert labels.label(key) == label and labels.text(key, value) == text


def test_unlisted_names_get_a_unit_from_their_suffix():
    assert labels.text("hardware.memory.lpddr.capacity_bytes", 480e9) == "480 GB"
    assert labels.label("hardware.memory.lpddr.capacity_bytes") == "lpddr capacity"
    assert labels.text("cluster.disaggregated.link_latency_s", 2e-6) == "2.00 µs"
    assert labels.text("some_new_share", 0.5) == "50.0%"
    assert labels.text("some_new_fraction", 0.25) == "25.0%"


def test_every_summary_field_has_a_label_without_underscores():
    for field in FIELDS:
        assert "_" not in labels.label(field), field


@pytest.mark.parametrize(
    ("key", "values", "title", "scale"),
    [
        ("ttft_p99_s", [0.0095, 0.298], "TTFT p99 (ms)", 1e3),
        ("ttft_p99_s", [0.2, 44.6], "TTFT p99 (s)", 1.0),
        ("tpot_p99_s", [2e-5], "TPOT p99 (µs)", 1e6),
        ("hardware.memory.hbm.bandwidth_bytes_per_s", [2e12, 4.8e12], "HBM bandwidth (TB/s)", 1e-12),
        ("slo_attainment", [0.5, 1.0], "SLO attainment (%)", 100.0),
        ("cost_per_1m_output_tokens_usd", [0.1, 50], "cost per 1M output tokens ($)", 1.0),
        ("parallelism.tp", [1, 2, 4], "tensor parallel (tp)", 1.0),
        ("hardware", ["h200"], "hardware", 1.0),
    ],
)
def test_an_axis_has_one_unit_for_all_its_values(key, values, title, scale):
    ax = labels.axis(key, values)
    assert (ax.title, ax.scale) == (title, scale)


def test_scaled_values_and_cells_under_a_unit_header():
    ax = labels.axis("ttft_p99_s", [0.0095, 0.298])
    assert labels.scaled(0.29812345, ax) == 298.1 and labels.scaled(None, ax) is None
    assert labels.scaled("h200", ax) == "h200"
    assert labels.axis_number(15040.2) == "15,040" and labels.axis_number(3.35) == "3.35"
    assert labels.axis_number(None) == "—"


def test_point_labels_say_which_parameter_a_bare_number_is():
    assert labels.point_text("parallelism.tp", 4) == "tp 4"
    assert labels.point_text("cluster.replicas", 2) == "replicas 2"
    assert labels.point_text("hardware.memory.hbm.bandwidth_bytes_per_s", 2e12) == "2 TB/s"
    assert labels.point_text("hardware", "mi300x") == "mi300x"


def test_directions_and_loads():
    assert labels.better("ttft_p99_s") == "lower" and labels.better("throughput_rps") == "higher"
    assert labels.better("kv_peak_fraction") is None
    assert labels.is_load("workload.arrivals.rate_per_s") and not labels.is_load("cluster.replicas")
