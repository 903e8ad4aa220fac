from sim.engine.summary import FIELDS, Summary
from sim.report.run import describe, summary_rows
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


def test_describe_names_load_stop_and_slo():
    sc = tiny_scenario(slo={"ttft_s": "50ms", "percentile": 90})
    assert (
        describe(sc)
        == "poisson at 50 requests/s, 50 requests, classes: default; SLO TTFT ≤ 50.0 ms at p90; seed 0"
    )
