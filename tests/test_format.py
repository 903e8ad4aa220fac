import math

from sim.format import count, number, percent, seconds, seconds_significant, si, usd


def test_missing_values_read_as_a_dash_or_the_given_marker():
    for fmt in (count, percent, seconds, seconds_significant, usd):
        assert fmt(None) == "—" and fmt(math.nan) == "—"
    assert number(None, missing="") == "" and number(math.nan, missing="-") == "-"


def test_numbers_keep_each_view_s_style():
    assert number(1234.5678) == "1,235" and number(1234) == "1234"
    assert number(1234, thousands=True) == "1,234"
    assert number(123456.0, whole_from=1e5) == "123,456" and number(123456.0) == "1.235e+05"
    assert seconds(0.0123) == "12.3 ms" and seconds(2.5) == "2.50 s"
    assert seconds(0.0123, ms_places=3, s_places=3) == "12.300 ms"
    assert seconds_significant(5e-6) == "5 µs" and seconds_significant(0.0123) == "12.3 ms"
    assert usd(0.012345) == "$0.01235" and usd(0.012345, cents=True) == "$0.0123"
    assert usd(1234.5, cents=True) == "$1,234.50"
    assert percent(0.257) == "25.7%" and percent(0.257, places=0) == "26%"
    assert si(8.1e10, "B") == "81 GB" and si(512, "B") == "512 B"
