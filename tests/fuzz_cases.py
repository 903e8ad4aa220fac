"""The fuzz corpus's cases (see tests/README.md): malformed and extreme scenario files, `--set`
overrides, traces, CLI flags and dashboard uploads, each with the exit code and the field its
message must name. `test_fuzz_corpus.py` runs them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import TINY_BASE

ROOT = Path(__file__).resolve().parents[1]
CHAT = str(ROOT / "examples" / "chat-h100.yaml")


def alias_bomb(levels: int = 9) -> str:
    """Nine lists of nine references to the list before: 9^9 (387 million) values once expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in itertools.pairwise("abcdefghijklmnopqrstuvwxyz"[:levels]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"

SCENARIO_FILES = {
    "bomb.yaml": alias_bomb(),
    "deep.yaml": DEEP,
    "recursive.yaml": "a: &a [*a]\n",
    "list.yaml": "- 1\n- 2\n",
    "empty.yaml": "",
    "scalar.yaml": "just text\n",
    "syntax.yaml": "name: [unclosed\n",
    "tabs.yaml": "name:\n\t- x\n",
    "binary.yaml": "\x00\x01\x02\xff",
    "unknown-key.yaml": yaml.safe_dump({**TINY_BASE, "colour": "red"}),
    "no-model.yaml": yaml.safe_dump({k: v for k, v in TINY_BASE.items() if k != "model"}),
    "bad-hardware.yaml": yaml.safe_dump({**TINY_BASE, "hardware": "nosuch-chip"}),
    "bad-model.yaml": yaml.safe_dump({**TINY_BASE, "model": "nosuch-model"}),
    "both-stops.yaml": yaml.safe_dump({**TINY_BASE, "stop": {"requests": 5, "duration_s": 5}}),
    "inf-rate.yaml": yaml.safe_dump(TINY_BASE).replace("rate_per_s: 30", "rate_per_s: .inf"),
    "nan-rate.yaml": yaml.safe_dump(TINY_BASE).replace("rate_per_s: 30", "rate_per_s: .nan"),
    "huge-int.yaml": yaml.safe_dump(TINY_BASE).replace("rate_per_s: 30", "rate_per_s: " + "9" * 400),
}

AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
TRACES = {
    "unsorted.csv": AZURE + "2023-11-16 18:15:46.68,100,10\n2023-11-16 18:15:45.68,100,10\n",
    "huge-tokens.csv": AZURE + "2023-11-16 18:15:46.68,100000000000000000000000,10\n",
    "int64-tokens.csv": AZURE + "2023-11-16 18:15:46.68,9223372036854775807,10\n",
    "zero-tokens.csv": AZURE + "2023-11-16 18:15:46.68,0,10\n",
    "negative-tokens.csv": AZURE + "2023-11-16 18:15:46.68,100,-5\n",
    "nan-tokens.csv": AZURE + "2023-11-16 18:15:46.68,nan,10\n",
    "text-tokens.csv": AZURE + "2023-11-16 18:15:46.68,many,10\n",
    "bad-time.csv": AZURE + "yesterday,100,10\n",
    "header-only.csv": AZURE,
    "empty.csv": "",
    "unknown-header.csv": "a,b,c\n1,2,3\n",
    "unsorted.jsonl": '{"timestamp": 5, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n'
    '{"timestamp": 1, "input_length": 10, "output_length": 5, "hash_ids": [2]}\n',
    "huge-hash.jsonl": '{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": ['
    + "9" * 30
    + "]}\n",
    "not-json.jsonl": '{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n{oops\n',
    "inf-time.jsonl": '{"timestamp": 1e999, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n',
}


@dataclass(frozen=True)
class Case:
    """One input: `argv` for the CLI (`{d}` is the corpus folder), or `upload` text for the
    dashboard's upload parser; `field` is what the message must name; `code` the exit code."""

    name: str
    field: str
    argv: tuple[str, ...] = ()
    upload: str | None = None
    code: int = 2


SET_FIELDS = {
    "workload.arrivals.rate_per_s": "rate_per_s",
    "hardware.memory.hbm.bandwidth_bytes_per_s": "bandwidth_bytes_per_s",
    "hardware.memory.hbm.capacity_bytes": "capacity_bytes",
    "hardware.peak_flops.bf16": "bf16",
    "scheduler.max_num_seqs": "max_num_seqs",
    "scheduler.max_num_batched_tokens": "max_num_batched_tokens",
    "scheduler.block_size": "block_size",
    "scheduler.memory_fraction": "memory_fraction",
    "cluster.replicas": "replicas",
    "stop.requests": "stop",
    "parallelism.tp": "tp",
    "slo.ttft_s": "ttft_s",
}
BAD_VALUES = ["inf", "-inf", ".nan", "nan", "-1", "0", "1e400", "1" + "0" * 20, "abc", "[1, 2]", "{a: 1}"]


def _run(*args: str) -> tuple[str, ...]:
    return ("run", *args, "--out", "{d}/out", "--json")


def cli_cases() -> list[Case]:
    """Every CLI case, grouped by the kind of input that is malformed."""
    return (
        bad_value_cases()
        + scenario_file_cases()
        + override_cases()
        + trace_cases()
        + estimate_cases()
        + command_flag_cases()
    )


def bad_value_cases() -> list[Case]:
    """Each bad value for each numeric field, given as a `--set` override."""
    return [
        Case(
            f"--set {path}={value}",
            field,
            _run(CHAT, "--set", "stop.requests=20", "--set", f"{path}={value}"),
        )
        for path, field in SET_FIELDS.items()
        for value in BAD_VALUES
    ]


def scenario_file_cases() -> list[Case]:
    """The malformed scenario files of `SCENARIO_FILES`, and one that does not exist."""
    files = {
        "bomb.yaml": "aliases expand",
        "deep.yaml": "nested deeper",
        "recursive.yaml": "refers to the node",
        "list.yaml": "mapping",
        "empty.yaml": "mapping",
        "scalar.yaml": "mapping",
        "syntax.yaml": "not valid YAML",
        "tabs.yaml": "not valid YAML",
        "binary.yaml": "binary.yaml",
        "unknown-key.yaml": "colour",
        "no-model.yaml": "model",
        "bad-hardware.yaml": "nosuch-chip",
        "bad-model.yaml": "nosuch-model",
        "both-stops.yaml": "stop",
        "inf-rate.yaml": "rate_per_s",
        "nan-rate.yaml": "rate_per_s",
        "huge-int.yaml": "rate_per_s",
        "missing.yaml": "missing.yaml",
    }
    return [Case(f"scenario file {name}", field, _run(f"{{d}}/{name}")) for name, field in files.items()]


def override_cases() -> list[Case]:
    """`--set` overrides that are malformed, out of range or too large to run."""
    sets = {
        "kv_cache.prefix_caching=true": "kv_cache.prefix_caching",
        "stop.requests=1000000000000": "stop.requests",
        "cluster.replicas=1000000": "cluster.replicas",
        "stop={duration_s: 1e12}": "stop.duration_s",
        "workload.prompt_tokens={kind: fixed, tokens: 10000000000000000000}": "prompt_tokens",
        "workload.prompt_tokens={kind: fixed, tokens: 200000}": "max context",
        "workload.prompt_tokens.max=10000000000000": "prompt_tokens",
        "stop.duration_s=1e3": "stop",
        "seed=" + "9" * 30: "seed",
        "no-equals-sign": "no-equals-sign",
        "workload..rate=1": "empty key",
        "seed.x=1": "seed",
        "hardware.memory.nosuch.capacity_bytes=1": "nosuch",
        "hardware.memory.hbm.bandwidth_bytes_per_s='1e400 TB/s'": "bandwidth_bytes_per_s",
        "hardware.peak_flops.bf16='lots'": "bf16",
        "workload.arrivals={kind: gamma, rate_per_s: 1, cv: .inf}": "cv",
        "workload.arrivals={kind: diurnal, rates_per_s: [1, .nan], bucket_s: 1}": "rates_per_s",
        "cost.electricity_usd_per_kwh=.inf": "electricity_usd_per_kwh",
    }
    return [
        Case(f"--set {item}", field, _run(CHAT, "--set", "stop.requests=20", "--set", item))
        for item, field in sets.items()
    ]


def trace_cases() -> list[Case]:
    """Each malformed trace of `TRACES`, described and replayed by a run."""
    trace_fields = {
        "unsorted.csv": "earlier than",
        "huge-tokens.csv": "ContextTokens",
        "int64-tokens.csv": "ContextTokens",
        "zero-tokens.csv": "ContextTokens",
        "negative-tokens.csv": "GeneratedTokens",
        "nan-tokens.csv": "ContextTokens",
        "text-tokens.csv": "ContextTokens",
        "bad-time.csv": "TIMESTAMP",
        "header-only.csv": "no rows",
        "empty.csv": "empty",
        "unknown-header.csv": "no known trace format",
        "unsorted.jsonl": "earlier than",
        "huge-hash.jsonl": "hash_ids",
        "not-json.jsonl": "line 2",
        "inf-time.jsonl": "timestamp",
    }
    cases = []
    for name, field in trace_fields.items():
        cases.append(Case(f"describe trace {name}", field, ("workload", "describe", f"{{d}}/{name}")))
        cases.append(
            Case(
                f"run trace {name}",
                field,
                _run(
                    CHAT,
                    "--set",
                    "stop.requests=20",
                    "--set",
                    f"workload={{trace: {{path: '{{d}}/{name}'}}}}",
                ),
            )
        )
    return cases


def estimate_cases() -> list[Case]:
    """`estimate` with flags out of range, not numbers, or naming no preset."""
    estimate = ("estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm")
    flags = [
        (("--input", "99999999999999999999", "--output", "10"), "--input"),
        (("--input", "100", "--output", "10", "--batch", "1000000000"), "--batch"),
        (("--input", "0", "--output", "10"), "--input"),
        (("--input", "abc", "--output", "10"), "--input"),
        (("--input", "100", "--output", "10", "--tp", "0"), "--tp"),
        (("--input", "100", "--output", "10", "--tp", "99999999999999999999"), "--tp"),
        (("--input", "100", "--output", "-3"), "--output"),
        (("--input", "100", "--output", "10", "--kv-dtype", "fp3"), "--kv-dtype"),
    ]
    cases = [Case(f"estimate {' '.join(f)}", field, (*estimate, *f)) for f, field in flags]
    cases.append(
        Case(
            "estimate --model nosuch",
            "nosuch",
            ("estimate", "--model", "nosuch", "--hardware", "h100-sxm", "--input", "1", "--output", "1"),
        )
    )
    return cases


def command_flag_cases() -> list[Case]:
    """Bad flags of `plan`, `cache-curve`, `cost-curve`, `sweep` and `--out`."""
    plan = ("plan", CHAT, "--slo", "ttft_p99=2s")
    cases = [
        Case(f"plan --qps {qps}", "--qps", (*plan, "--qps", qps))
        for qps in ("inf", "-inf", "nan", "0", "-5", "abc")
    ]
    cases += [
        Case("plan --hardware nosuch", "nosuch", (*plan, "--qps", "10", "--hardware", "nosuch")),
        Case("plan --tp abc", "--tp", (*plan, "--qps", "10", "--tp", "abc")),
        Case("plan --slo nonsense", "nonsense", ("plan", CHAT, "--qps", "10", "--slo", "nonsense")),
        Case(
            "plan on an alias bomb",
            "aliases expand",
            ("plan", "{d}/bomb.yaml", "--qps", "1", "--slo", "ttft_p99=2s"),
        ),
        Case(
            "cache-curve --capacities abc",
            "--capacities",
            (
                "cache-curve",
                str(ROOT / "tests/data/mooncake_conversation_sample.jsonl"),
                "--capacities",
                "abc",
            ),
        ),
        Case(
            "cache-curve --policies nosuch",
            "--policies",
            ("cache-curve", str(ROOT / "tests/data/mooncake_conversation_sample.jsonl"), "--policies", "x"),
        ),
        Case(
            "cost-curve --hardware nosuch",
            "nosuch",
            ("cost-curve", "--model", "llama-3.1-8b", "--hardware", "nosuch"),
        ),
        Case("sweep of an alias bomb", "aliases expand", ("sweep", "{d}/bomb.yaml", "--out", "{d}/out")),
        Case("--out is an existing file", "--out", ("run", CHAT, "--out", "{d}/bomb.yaml")),
        Case("--out under a file", "is not a folder", ("run", CHAT, "--out", "{d}/bomb.yaml/sub")),
    ]
    return cases


def upload_cases() -> list[Case]:
    tiny = {k: v for k, v in TINY_BASE.items() if k not in ("hardware", "model")}
    good = {**tiny, "hardware": "h100-sxm", "model": "llama-3.1-8b", "stop": {"requests": 20}}
    texts = {
        "alias bomb": (alias_bomb(), "aliases expand"),
        "deep nesting": (DEEP, "nested deeper"),
        "recursive alias": ("a: &a [*a]\n", "refers to the node"),
        "a list": ("[1, 2]\n", "mapping"),
        "empty": ("", "mapping"),
        "syntax error": ("name: [unclosed\n", "not valid YAML"),
        "server path": (yaml.safe_dump({**good, "hardware": "/etc/passwd.yaml"}), "hardware"),
        "trace path": (yaml.safe_dump({**good, "workload": {"trace": {"path": "/etc/x.csv"}}}), "path"),
        "unknown preset": (yaml.safe_dump({**good, "model": "nosuch"}), "model"),
        "inf rate": (yaml.safe_dump(good).replace("rate_per_s: 30", "rate_per_s: .inf"), "rate_per_s"),
        "huge requests": (yaml.safe_dump({**good, "stop": {"requests": 10**12}}), "stop.requests"),
        "huge replicas": (yaml.safe_dump({**good, "cluster": {"replicas": 10**6}}), "cluster.replicas"),
        "over context": (
            yaml.safe_dump(
                {
                    **good,
                    "workload": {**good["workload"], "prompt_tokens": {"kind": "fixed", "tokens": 200_000}},
                }
            ),
            "max context",
        ),
    }
    cases = [Case(f"upload: {name}", field, upload=text) for name, (text, field) in texts.items()]
    cases += [
        Case("upload: not base64", "not a readable upload", upload="data:application/x-yaml;base64,!!!"),
        Case("upload: not UTF-8", "not valid YAML", upload="\udcff"),
        Case("upload: over the size limit", "limit", upload="x: " + "1" * 300_000),
    ]
    return cases


CASES = cli_cases() + upload_cases()
