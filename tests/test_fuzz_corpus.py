"""A corpus of malformed and extreme inputs: scenario files, `--set` overrides, traces, CLI flags and
dashboard uploads. Each must be refused cleanly: the expected exit code, one message naming the
field, no traceback, and nothing written. `test_corpus` runs them all and prints one count line;
hypothesis then mutates a valid scenario at random and checks that validation only ever accepts
or raises `ScenarioError`.
"""

from __future__ import annotations

import base64
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dashboard.runs import parse_upload
from hardware.yamltext import load_yaml
from sim.cli import app
from sim.scenario import ScenarioError, scenario_from_dict, set_path
from tests.conftest import TINY_BASE
from tests.fuzz_cases import CASES, CHAT, ROOT, SCENARIO_FILES, TRACES, Case, alias_bomb

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, text in {**SCENARIO_FILES, **TRACES}.items():
        (folder / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    return folder


def _normalized(text: str) -> str:
    """Output with rich's box drawing and line wrapping removed, for matching a message."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def _data_url(text: str) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    return (
        text
        if text.startswith("data:")
        else "data:application/x-yaml;base64," + base64.b64encode(raw).decode()
    )


def outcome(case: Case, folder: Path) -> tuple[str, str]:
    """('clean' | 'accepted-invalid' | 'traceback' | 'data-loss' | 'unclear', detail) for one case."""
    if case.upload is not None:
        try:
            parse_upload(_data_url(case.upload), "upload.yaml", 256 * 1024)
        except ScenarioError as exc:
            message = str(exc)
            return ("clean", message) if case.field.lower() in message.lower() else ("unclear", message)
        except Exception as exc:  # anything but ScenarioError escaping is the failure counted here
            return "traceback", repr(exc)
        return "accepted-invalid", ""
    before = sorted(p.name for p in folder.iterdir())
    result = runner.invoke(app, [a.replace("{d}", str(folder)) for a in case.argv])
    text = _normalized(result.output)
    after = sorted(p.name for p in folder.iterdir())
    if result.exit_code == 0:
        return "accepted-invalid", text[:300]
    crashed = result.exit_code == 1 and "internal error" in text
    if crashed or "Traceback" in result.output or not isinstance(result.exception, SystemExit | None):
        return "traceback", f"{result.exception!r} {text[:300]}"
    if after != before:
        return "data-loss", f"wrote {sorted(set(after) - set(before))}"
    if result.exit_code != case.code or case.field.lower() not in text.lower():
        return "unclear", f"exit {result.exit_code}: {text[:300]}"
    return "clean", text


def test_corpus(corpus, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where a crash would save its traceback
    outcomes = {case.name: outcome(case, corpus) for case in CASES}
    counts = {
        k: sum(o == k for o, _ in outcomes.values())
        for k in ("clean", "traceback", "accepted-invalid", "data-loss", "unclear")
    }
    line = (
        f"{len(CASES)} tried, {counts['clean']} rejected cleanly, {counts['traceback']} tracebacks, "
        f"{counts['accepted-invalid']} accepted-invalid, {counts['data-loss']} data loss, "
        f"{counts['unclear']} unclear"
    )
    with capsys.disabled():
        print(f"\nfuzz corpus: {line}")
    bad = {name: o for name, o in outcomes.items() if o[0] != "clean"}
    assert not bad, f"{line}\n" + "\n".join(f"{k}: {v}" for k, v in bad.items())
    assert len(CASES) >= 150
    assert len({case.name for case in CASES}) == len(CASES)


def test_alias_bomb_is_refused_within_a_second(corpus):
    start = time.perf_counter()
    with pytest.raises(yaml.YAMLError, match="aliases expand"):
        load_yaml(alias_bomb())
    assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    r = runner.invoke(app, ["run", str(corpus / "bomb.yaml")])
    assert r.exit_code == 2 and time.perf_counter() - start < 1.0
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match="aliases expand"):
        parse_upload(_data_url(alias_bomb()), "bomb.yaml", 256 * 1024)
    assert time.perf_counter() - start < 1.0


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_real_process_refuses_a_bomb_and_a_huge_run_without_a_traceback(corpus):
    """In a real process under a 4 GiB address-space limit: the alias bomb and a run that would
    need terabytes are both refused with exit 2 and one line, long before memory runs out."""
    for args in (["run", str(corpus / "bomb.yaml")], ["run", CHAT, "--set", "stop.requests=1000000000000"]):
        proc = subprocess.run(
            [sys.executable, "-c", "from sim.cli import app; app(prog_name='ctxsim')", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            preexec_fn=_limit_memory,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert proc.stderr.startswith("error:")


def test_unexpected_error_is_one_line_with_a_saved_traceback(monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr("sim.cost.estimate.estimate", broken)
    r = runner.invoke(
        app,
        ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input", "10", "--output", "10"],
    )
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    message = _normalized(r.stderr)
    assert "internal error: RuntimeError: something inside broke; traceback saved to" in message
    saved = list(tmp_path.glob("ctxsim-error-*.txt"))
    assert len(saved) == 1
    assert saved[0].name in r.stderr.replace("\n", "")
    assert "Traceback" in saved[0].read_text() and "something inside broke" in saved[0].read_text()


# ---- hypothesis: random mutations of a valid scenario ---------------------------------------------
LEAVES = [
    "seed",
    "parallelism.tp",
    "cluster.replicas",
    "scheduler.max_num_seqs",
    "scheduler.max_num_batched_tokens",
    "scheduler.block_size",
    "scheduler.memory_fraction",
    "scheduler.chunk_size",
    "workload.arrivals.rate_per_s",
    "workload.prompt_tokens.low",
    "workload.prompt_tokens.high",
    "workload.output_tokens.high",
    "workload.block_tokens",
    "stop.requests",
    "kv_cache.block_tokens",
    "cost.amortization_years",
]
WEIRD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(LEAVES), WEIRD), min_size=1, max_size=3))
def test_mutated_scenarios_validate_or_name_the_field(mutations):
    """Validation of any mutation either accepts (and then every number is finite and in range)
    or raises ScenarioError; nothing else escapes."""
    data = dict(TINY_BASE)
    for path, value in mutations:
        data = set_path(data, path, value)
    try:
        scenario = scenario_from_dict(data)
    except ScenarioError as exc:
        assert str(exc)
        return
    dumped = yaml.safe_dump(scenario.model_dump(mode="json"))
    assert ".inf" not in dumped and ".nan" not in dumped
