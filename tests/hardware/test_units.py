import pytest

from hardware.units import parse_bandwidth, parse_bytes, parse_flops, parse_seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80 GB", 80e9),
        ("192 GiB", 192 * 2**30),
        ("230 MB", 230e6),
        ("1.5 TB", 1.5e12),
        (1024, 1024.0),
        ("4 Gb", 5e8),
    ],
)
def test_bytes(text, expected):
    assert parse_bytes(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.35 TB/s", 3.35e12),
        ("450 GB/s", 450e9),
        ("400 Gb/s", 50e9),
        ("800 GiB/s", 800 * 2**30),
        ("819 GBps", 819e9),
    ],
)
def test_bandwidth(text, expected):
    assert parse_bandwidth(text) == pytest.approx(expected)


def test_flops_and_time():
    assert parse_flops("989 TFLOPS") == pytest.approx(989e12)
    assert parse_flops("750 TOPS") == pytest.approx(750e12)
    assert parse_seconds("50ms") == pytest.approx(0.05)
    assert parse_seconds("2s") == 2.0
    assert parse_seconds("5us") == pytest.approx(5e-6)


@pytest.mark.parametrize("bad", ["fast", "80 parsecs", "3.35 TB/h", "", "GB"])
def test_malformed_units_rejected(bad):
    with pytest.raises(ValueError, match="cannot read"):
        parse_bandwidth(bad)
