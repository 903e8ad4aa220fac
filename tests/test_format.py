import math

from sim.format import (
    count,
    interval,
    number,
    percent,
    percent_ci,
    rate_ci,
    seconds,
    seconds_ci,
    seconds_significant,
    si,
    usd,
)


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


def test_intervals_read_in_the_estimate_s_unit_and_decimals():
    assert seconds_ci(0.3014, 0.2901, 0.3129) == "301 ms [290–313]"
    assert seconds_ci(0.0415) == "41.5 ms" and seconds_ci(1.5, None, 1.6) == "1.50 s"
    assert seconds_ci(0.99, 0.95, 1.02) == "990 ms [950–1,020]" and seconds_ci(None) == "—"
    assert seconds_ci(5e-6) == "5.00 µs"
    assert rate_ci(12.027, 11.649, 12.406) == "12.03 req/s [11.65–12.41]" and rate_ci(3.0) == "3.00 req/s"
    assert percent_ci(0.932, 0.91, 0.951) == "93.2% [91.0–95.1]" and percent_ci(math.nan) == "—"
    assert interval(1.0, 2.5) == "[1–2.5]" and interval(None, 2.0) == "—"
