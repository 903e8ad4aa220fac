from sim.engine.summary import FIELDS, Summary
from sim.report.run import describe, notes_html, summary_rows
from tests.conftest import tiny_scenario


def test_summary_rows_have_units_and_skip_missing_values():
    summary = Summary(
        **{
            **dict.fromkeys(FIELDS),
            "requests_finished": 1200,
            "requests_rejected": 0,
            "throughput_rps": 3.25,
            "ttft_p50_s": 0.0415,
            "ttft_p99_s": 1.5,
            "slo_attainment": 0.932,
            "cost_per_1m_output_tokens_usd": None,
            "prefix_hit_rate_tokens": 0.46,
            "prefix_hit_rate_blocks": 0.44,
        }
    )
    rows = dict(summary_rows(summary, caching=True))
    assert rows["requests finished"] == "1,200"
    assert rows["TTFT p50 / p99"] == "41.5 ms / 1.50 s"
    assert rows["SLO attainment"] == "93.2%"
    assert rows["prefix hit rate (tokens / blocks)"] == "46.0% / 44.0%"
    assert "cost per 1M output tokens" not in rows and "TPOT p50 / p99" not in rows
    assert "prefix hit rate (tokens / blocks)" not in dict(summary_rows(summary, caching=False))
    assert "overloaded" not in rows and "measured" not in rows


def test_summary_rows_show_intervals_what_was_measured_and_overload():
    summary = Summary(
        **{
            **dict.fromkeys(FIELDS),
            "requests_total": 5000,
            "warmup_requests_dropped": 26,
            "drain_requests_dropped": 43,
            "throughput_rps": 12.027,
            "throughput_ci_lo_rps": 11.649,
            "throughput_ci_hi_rps": 12.406,
            "ttft_p50_s": 0.0415,
            "ttft_p99_s": 0.3014,
            "ttft_p99_ci_lo_s": 0.2901,
            "ttft_p99_ci_hi_s": 0.3129,
            "slo_attainment": 0.932,
            "slo_attainment_ci_lo": 0.91,
            "slo_attainment_ci_hi": 0.951,
            "overloaded": True,
            "offered_rps": 40.0,
            "sustainable_rps": 23.0,
            "steady_state": False,
            "ci_level": 0.95,
        }
    )
    rows = summary_rows(summary, caching=False)
    assert rows[0] == ("overloaded", "offered 40.00 req/s, sustainable 23.00 req/s")
    rows = dict(rows)
    assert rows["measured"] == "4,931 (dropped 26 warm-up, 43 drain)"
    assert rows["throughput"] == "12.03 req/s [11.65–12.41]"
    assert rows["TTFT p50 / p99"] == "41.5 ms / 301 ms [290–313]"
    assert rows["SLO attainment"] == "93.2% [91.0–95.1]"
    notes = notes_html(summary)
    assert "<li class='warning'>the load was still drifting: simulate more requests</li>" in notes
    assert "[lo–hi]: 95% confidence intervals" in notes and "20,000" not in notes


def test_a_p99_without_interval_is_explained():
    summary = Summary(**{**dict.fromkeys(FIELDS), "ttft_p99_s": 0.3, "steady_state": True, "ci_level": 0.95})
    assert "p99 intervals need ≥ 20,000 measured requests" in notes_html(summary)


def test_describe_names_load_stop_and_slo():
    sc = tiny_scenario(slo={"ttft_s": "50ms", "percentile": 90})
    assert (
        describe(sc)
        == "poisson at 50 requests/s, 50 requests, classes: default; SLO TTFT ≤ 50.0 ms at p90; seed 0"
    )
