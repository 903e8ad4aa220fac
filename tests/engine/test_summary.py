import pytest

from sim.engine.summary import FIELDS, Summary


def _summary(**values) -> Summary:
    return Summary(**{**dict.fromkeys(FIELDS), **values})


def test_to_dict_keeps_field_order_and_none_values():
    d = _summary(ttft_p99_s=1.5).to_dict()
    assert list(d) == list(FIELDS) and d["ttft_p99_s"] == 1.5 and d["cost_usd"] is None


def test_metric_reads_a_field_by_name_and_refuses_unknown_names():
    s = _summary(ttft_p99_s=1.5)
    assert s.metric("ttft_p99_s") == 1.5
    with pytest.raises(KeyError):
        s.metric("ttft_p99")
