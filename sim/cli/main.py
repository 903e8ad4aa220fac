"""`ctxsim` command line: the only place that prints and writes files."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hardware.spec import BYTES_PER_ELEMENT
from hardware.stacks import DEFAULT_STACK
from sim.cli.console import err, fail, guard_commands, out
from sim.cli.costs import BasisOption, PriceOption, basis_line, cost_assumptions, parse_price
from sim.format import count, number, percent, seconds, si, usd
from workloads.lengths import MAX_TOKENS

if TYPE_CHECKING:
    from sim.engine.summary import Summary

__all__ = ["app", "err", "fail", "main", "out"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="Capacity planning for long-context LLM inference hardware.",
)


MAX_BATCH = 1_000_000  # sequences in one estimated batch: each costs a few array slots
MAX_DEVICES = 65_536  # tensor-parallel or pipeline degree


def _time(s: float) -> str:
    """A duration to the microsecond, as the estimate table shows it."""
    return seconds(s, ms_places=3, s_places=3)


def _borrowed(profile) -> str:
    """'e2e, ttft' for a profile whose bands of those metrics are read from every stack's held-out
    rows (`hardware.stacks.Band.rows_of`: it has too few of its own), else ''."""
    metrics = {b.metric for b in profile.uncertainty if b.rows_of == "every stack"} if profile else set()
    return ", ".join(sorted(metrics))


def _band(lo: float | None, hi: float | None, fmt=_time) -> str:
    """' (lo-hi)' of a model-uncertainty interval, or nothing without one."""
    return "" if lo is None or hi is None else f" ({fmt(lo)}-{fmt(hi)})"


STACK_HELP = (
    "serving stack profile: typical, vllm, sglang, trtllm, roofline (the physical lower bound), "
    "none (the hardware file as written), or a profile YAML"
)


# The dtypes weights and KV can be served in: every known dtype but fp32.
Dtype = StrEnum("Dtype", {d: d for d in BYTES_PER_ELEMENT if d != "fp32"})


@app.command()
def estimate(
    model: Annotated[str, typer.Option(help="preset name, YAML file or Hugging Face config.json")],
    hardware: Annotated[str, typer.Option(help="preset name or YAML file")],
    input: Annotated[int, typer.Option("--input", min=1, max=MAX_TOKENS, help="prompt tokens")],
    output: Annotated[int, typer.Option("--output", min=1, max=MAX_TOKENS, help="output tokens")],
    tp: Annotated[int, typer.Option(min=1, max=MAX_DEVICES, help="tensor-parallel degree")] = 1,
    pp: Annotated[int, typer.Option(min=1, max=MAX_DEVICES, help="pipeline stages")] = 1,
    ep: Annotated[int, typer.Option(min=1, max=MAX_DEVICES, help="expert-parallel degree of MoE layers")] = 1,
    attention_dp: Annotated[
        int, typer.Option(min=1, max=MAX_DEVICES, help="data-parallel attention ranks (MoE shared via ep)")
    ] = 1,
    cp: Annotated[int, typer.Option(min=1, max=MAX_DEVICES, help="context-parallel (ring) ranks")] = 1,
    batch: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="sequences decoded together")] = 1,
    kv_dtype: Annotated[Dtype | None, typer.Option(help="KV cache dtype (default: the model's)")] = None,
    weight_dtype: Annotated[Dtype | None, typer.Option(help="weight dtype (default: the model's)")] = None,
    rope_factor: Annotated[
        float | None,
        typer.Option(min=1, help="extend the model's context by this RoPE scaling factor (YaRN)"),
    ] = None,
    max_batched_tokens: Annotated[
        int,
        typer.Option(min=1, max=MAX_TOKENS, help="the scheduler's token budget a step (sizes the activation "
                     "reserve, up to batch x input)"),
    ] = 8192,
    place: Annotated[
        str | None,
        typer.Option(help="memory placement, ROLE=TIER pairs: weights, weights_spill, kv, kv_spill, "
                     "activations (e.g. kv_spill=host)"),
    ] = None,
    stack: Annotated[str, typer.Option(help=STACK_HELP)] = DEFAULT_STACK,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
    basis: BasisOption = None,
    price: PriceOption = None,
) -> None:
    """Analytic answer in a second: memory fit, KV bytes, prefill time, decode step time, max batch,
    each latency and throughput with the serving stack's 80% interval from held-out measurements,
    and what it costs: $/hour, $/1M input tokens (prefill time) and $/1M output tokens (decode)."""
    from hardware import load_hardware, load_stack
    from sim.cost.estimate import Memory
    from sim.cost.estimate import estimate as run_estimate
    from sim.cost.memory import TierPlacement
    from sim.cost.parallelism import Parallelism
    from workloads import RopeScaling, load_model

    cost = cost_assumptions(None, basis, price)
    try:
        pairs = [p.partition("=") for p in (place or "").split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(f"--place: give ROLE=TIER pairs separated by commas, got {place!r}")
        placement = TierPlacement(**{role.strip(): tier.strip() for role, _, tier in pairs})
        memory = Memory(max_batched_tokens=max_batched_tokens, placement=placement)
        arch = load_model(model).with_dtypes(
            weight_dtype.value if weight_dtype else None, kv_dtype.value if kv_dtype else None
        )
        if rope_factor is not None and rope_factor > 1:
            arch = arch.model_copy(update={"rope_scaling": RopeScaling(factor=rope_factor)})
        hw = load_hardware(hardware)
        split = Parallelism(tp, pp, ep=ep, attention_dp=attention_dp, cp=cp)
        profile = load_stack(stack)
        result = run_estimate(arch, hw, split, input, output, batch, memory, profile)
    except ValueError as exc:
        fail(str(exc))
    costs = _estimate_costs(result, hw, split.devices, cost)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), **costs}))
        return
    r = result
    borrowed = _borrowed(profile)
    table = Table(
        title=f"{r.model} on {split.devices} x {r.hardware} ({_split(r)}), "
        f"{r.batch} x {r.input_tokens:,} in / {r.output_tokens:,} out, stack {r.stack or 'none'}",
        show_header=False,
        caption="[dim](lo-hi): the stack's 80% interval from held-out measurements"
        + (f"; for {borrowed}: every stack's (too few of its own)" if borrowed else "")
        + "[/]"
        if r.ttft_lo_s is not None
        else None,
        caption_justify="left",
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    fit = "[green]yes[/]" if r.fits else f"[red]no[/]: {r.reason}"
    rows = [
        ("fits", fit),
        ("weights per device", si(r.weights_bytes_per_device, "B")),
        ("KV per token", si(r.kv_bytes_per_token, "B")),
        ("KV per sequence", si(r.kv_bytes_per_sequence, "B")),
        ("KV capacity", f"{r.kv_capacity_tokens:,} tokens"),
        ("max batch at this context", f"{r.max_batch_at_context:,}"),
        (
            "prefill (TTFT)",
            f"{_time(r.prefill_s)}{_band(r.ttft_lo_s, r.ttft_hi_s)} ({r.prefill_bound}-bound)",
        ),
        ("first decode step", f"{_time(r.decode_step_s)} ({r.decode_bound}-bound)"),
        ("TPOT (mean)", _time(r.tpot_s) + _band(r.tpot_lo_s, r.tpot_hi_s)),
        ("end to end", _time(r.e2e_s) + _band(r.e2e_lo_s, r.e2e_hi_s)),
        (
            "output tokens/s",
            f"{r.output_tokens_per_s:,.1f}"
            + _band(r.output_tokens_lo_per_s, r.output_tokens_hi_per_s, lambda x: f"{x:,.1f}"),
        ),
    ]
    if not r.fits and r.devices_needed:
        rows.insert(1, ("devices needed", f"{r.devices_needed} (tp={r.suggested_tp}, pp={r.suggested_pp})"))
    elif not r.fits and not r.reason.startswith("context_limit"):
        rows.insert(1, ("devices needed", "more than searched"))
    if r.reason and r.fits:
        rows.insert(1, ("note", r.reason))
    if r.fits:
        rows += _cost_rows(costs)
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)


def _estimate_costs(r, hw, devices: int, cost) -> dict:
    """What the estimated batch costs on `cost`'s basis: the group's $/hour, and $/1M input tokens
    (the batch's prefill time) and output tokens (the rest of its end-to-end time); None without a
    price, with `cost_basis` saying why."""
    from sim.cost import pricing

    price = pricing.device_price(hw, cost)
    out = {
        "cost_basis": basis_line(hw, cost),
        "price_per_device_hour_usd": None,
        "cost_per_hour_usd": None,
        "cost_per_1m_input_tokens_usd": None,
        "cost_per_1m_output_tokens_usd": None,
    }
    if price is None or not r.fits or r.e2e_s <= 0:
        return out
    hourly = price.usd_per_device_hour * devices
    into, outof = pricing.batch_token_split_usd_per_1m(
        hourly, r.prefill_s, r.e2e_s, r.batch, r.input_tokens, r.output_tokens
    )
    return out | {
        "price_per_device_hour_usd": price.usd_per_device_hour,
        "cost_per_hour_usd": hourly,
        "cost_per_1m_input_tokens_usd": into,
        "cost_per_1m_output_tokens_usd": outof,
    }


def _cost_rows(costs: dict) -> list[tuple[str, str]]:
    """The estimate's price rows: $/hour and $/1M tokens in and out, then the basis they are on."""
    if costs["cost_per_hour_usd"] is None:
        return [("cost", f"— ({costs['cost_basis']})")]
    tokens = " / ".join(
        usd(costs[k], cents=True) for k in ("cost_per_1m_input_tokens_usd", "cost_per_1m_output_tokens_usd")
    )
    return [
        ("$ / hour", usd(costs["cost_per_hour_usd"], cents=True)),
        ("$ / 1M tokens in / out", tokens),
        ("priced at", costs["cost_basis"]),
    ]


def _split(r) -> str:
    """An estimate's parallel degrees, those above 1 after tp and pp."""
    extra = [f"{k}={getattr(r, k)}" for k in ("ep", "attention_dp", "cp") if getattr(r, k) > 1]
    return ", ".join([f"tp={r.tp}", f"pp={r.pp}", *extra])


def _written(out_dir: Path) -> str:
    """The files an output folder holds, as 'wrote' lists them (not ctxsim's own marker)."""
    names = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))
    return ", ".join(names)


def _write_outputs(result, out_dir: Path, csv: bool, overwrite: bool) -> None:
    """Write every file into a fresh sibling folder that becomes `out_dir` only when complete."""
    import yaml

    from sim.files import output_folder
    from sim.report.run import run_report

    with output_folder(out_dir, overwrite) as tmp:
        (tmp / "summary.json").write_text(json.dumps(result.summary.to_dict(), indent=2) + "\n")
        result.requests.to_parquet(tmp / "requests.parquet", index=False)
        result.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
        result.classes.to_csv(tmp / "classes.csv", index=False)
        if csv:
            result.requests.to_csv(tmp / "requests.csv", index=False)
        scenario = result.scenario.model_dump(mode="json")
        (tmp / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
        (tmp / "report.html").write_text(run_report(result))


def _summary_table(sc, s: Summary, rejected: dict[str, int]) -> Table:
    """The run's headline numbers, one row each, as `ctxsim run` prints them: estimates with their
    confidence intervals, how many requests they measure, the rejected ones by reason, a red row when
    the run is overloaded, its cost on the basis stated beside it, and the caveats on them as a
    caption."""
    from rich.markup import escape

    from hardware.stacks import load_stack
    from sim.report.readout import (
        estimate,
        latency,
        measured,
        model_band_rows,
        notes,
        overload,
        rejected_text,
    )

    style = {"warning": "yellow", "info": "dim"}
    caption = [f"[{style[n.level]}]{escape(n.text)}[/]" for n in notes(s)]
    if model_band_rows(s) and (borrowed := _borrowed(load_stack(sc.stack))):
        caption.append(f"[dim]stack's 80% bands of {borrowed}: every stack's (too few of its own)[/]")
    table = Table(
        title=f"{sc.name}: {sc.model.name} on {sc.replicas} x {sc.par.devices} x {sc.hardware.name}, "
        f"stack {sc.stack}",
        show_header=False,
        caption="\n".join(caption),
        caption_justify="left",
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    if (load := overload(s)) is not None:
        table.add_row("[red]OVERLOADED[/]", f"[red]{load}[/]")
    rows = [
        ("requests finished / rejected", rejected_text(s.requests_finished, s.requests_rejected, rejected)),
        ("measured", measured(s)),
        ("throughput", estimate(s, "throughput_rps")),
        ("output tokens/s", count(s.output_tokens_per_s)),
        ("TTFT p50 / p99", latency(s, "ttft")),
        ("TPOT p50 / p99", latency(s, "tpot")),
        ("e2e p50 / p99", latency(s, "e2e")),
        ("goodput", estimate(s, "goodput_rps")),
        ("SLO attainment", estimate(s, "slo_attainment")),
        ("KV peak", percent(s.kv_peak_fraction, places=0)),
        ("preemptions", number(s.preemptions, thousands=True)),
        ("compute-bound share", percent(s.compute_bound_time_fraction, places=0)),
        *_run_cost_rows(sc, s),
        ("simulated in", f"{s.sim_wall_s:.2f} s"),
    ]
    rows += model_band_rows(s)
    for label, value in rows:
        table.add_row(label, escape(value) if value is not None else "—")
    return table


def _run_cost_rows(sc, s: Summary) -> list[tuple[str, str]]:
    """A run's price rows: $/hour, $/1M input and output tokens (split by the device time prefill
    took), then the basis they are on, or why there is no price."""
    if s.cost_usd is None:
        return [("cost", f"— ({basis_line(sc.hardware, sc.cost)})")]
    split = (s.cost_per_1m_input_tokens_usd, s.cost_per_1m_output_tokens_usd)
    tokens = " / ".join(usd(v, cents=True) for v in split)
    return [
        ("$ / hour", usd(s.cost_per_hour_usd, cents=True)),
        ("$ / 1M tokens in / out", tokens),
        ("prefill share of device time", percent(s.prefill_cost_share, places=0)),
        ("priced at", s.cost_basis or basis_line(sc.hardware, sc.cost)),
    ]


def _verdict_table(verdict) -> Table:
    """The run's SLO targets per class: the p50 / p90 / p99 achieved (and the target's own percentile
    when it is none of those), the headroom at the target's percentile, and PASS or MISS; a class with
    rejected requests misses, and the last row is the run's verdict."""
    from sim.format import seconds_ci

    table = Table(title="SLO verdict", caption=f"percentiles {verdict.window}", caption_justify="left")
    for col in ("class", "target", "p50", "p90", "p99", "headroom", "verdict"):
        left = col in ("class", "target", "verdict")
        table.add_column(col, justify="left" if left else "right", no_wrap=col == "target")
    for c in verdict.classes:
        for t in c.targets:
            cells = [seconds_ci(t.values.get(q)) for q in (50.0, 90.0, 99.0)]
            label = t.label
            if t.percentile not in (50.0, 90.0, 99.0):
                label += f" (p{t.percentile:g} {seconds_ci(t.achieved)})"
            headroom = "—" if t.headroom is None else f"{t.headroom:+.0%}"
            table.add_row(c.name, label, *cells, headroom, _pass(t.passed))
        if c.rejected:
            rejected = f"{c.rejected:,} of {c.requests:,} requests rejected"
            table.add_row(c.name, rejected, "", "", "", "", _pass(False))
    overall = "overloaded: latency unmeasurable" if verdict.overloaded else ""
    table.add_row("[bold]overall[/]", overall, "", "", "", "", _pass(verdict.passed))
    return table


def _pass(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]MISS[/]"


def _warn_unconverged(sc, s: Summary) -> None:
    """One yellow line on stderr when a run asked to converge did not: overloaded, or at the cap
    with the metrics still too wide (their relative half-widths) or the load still drifting."""
    from sim.converge import unconverged

    if s.converged is not False:
        return
    stop = sc.stop
    if s.overloaded:
        why = f"overloaded at {s.converged_requests:,} requests: its percentiles grow with any run length"
    else:
        wide = [
            f"{field} ±{w:.1%}" if w < float("inf") else f"{field} has no interval"
            for field, w in unconverged(s, stop).items()
        ]
        drift = [] if s.steady_state else ["the load still drifts"]
        why = (
            f"{', '.join(wide + drift)} at the cap of {stop.max_requests:,} requests "
            f"(target ±{stop.relative_ci:.1%})"
        )
    err.print(f"[bold yellow]warning: not converged:[/] {why}", highlight=False, soft_wrap=True)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder for summary.json, parquet tables, report.html")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="override a field: key.path=value")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="also write requests.csv")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an earlier ctxsim output folder at --out")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="draw, simulate and write the run a chunk at a time, in memory that does not grow "
            "with its length (a day of traffic); needs --out",
        ),
    ] = False,
    basis: BasisOption = None,
    price: PriceOption = None,
) -> None:
    """Simulate a scenario and write its results; prints the summary, each SLO target's verdict per
    class, and the files written."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from sim.api import make_requests
    from sim.api import run as run_scenario
    from sim.files import OutputError, check_folder
    from sim.runnable import load_scenario
    from sim.scenario import ScenarioError

    if stream and out_dir is None:
        fail("--stream needs --out: a streamed run writes its request table to disk as it goes")
    if stream and csv:
        fail("--csv: a streamed run writes requests.parquet only (a CSV of every request would be huge)")
    if out_dir is not None:
        try:
            check_folder(out_dir, overwrite)
        except OutputError as exc:
            fail(str(exc))
    overrides = [*(overrides or []), *_cost_overrides(basis, price)]
    if stream:
        _run_streamed(scenario, overrides, out_dir, overwrite, as_json, quiet)
        return
    try:
        sc = load_scenario(scenario, overrides)
        reqs = make_requests(sc)
    except (ScenarioError, ValueError) as exc:
        fail(f"{scenario}: {exc}")
    if len(reqs) == 0:
        fail(f"{scenario}: the workload produced no requests before the stop condition")
    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} requests"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, disable=quiet or as_json, transient=True) as bar:
        task = bar.add_task("run", total=len(reqs))
        result = run_scenario(
            sc,
            progress=lambda k: bar.advance(task, k),
            requests=reqs,
            attempt=lambda n: bar.reset(task, total=n),
        )
    _warn_unconverged(sc, result.summary)
    if out_dir is not None:
        try:
            _write_outputs(result, out_dir, csv, overwrite)
        except (OutputError, OSError) as exc:
            fail(f"--out {out_dir}: nothing written: {exc}")
    from sim.report.readout import rejected_counts, slo_verdict

    verdict = slo_verdict(sc, result.summary, result.classes, result.requests)
    wrote = _written(out_dir) if out_dir is not None else ""
    _print_run(sc, result.summary, as_json, out_dir, wrote, rejected_counts(result.requests), verdict)


def _cost_overrides(basis, price: str | None) -> list[str]:
    """`--basis` and `--price` as `--set` overrides of the scenario's `cost:` (its checks name the field)."""
    sets = []
    if basis is not None:
        sets.append(f"cost.basis={basis.value}")
    if price is not None:
        sets.append(f"cost.per_device_hour_usd={json.dumps(parse_price(price))}")
    return sets


def _print_run(
    sc,
    summary: Summary,
    as_json: bool,
    out_dir: Path | None,
    wrote: str,
    rejected: dict[str, int],
    verdict=None,
) -> None:
    """The summary as JSON, or as the run table, the SLO verdict table and the files written."""
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    out.print(_summary_table(sc, summary, rejected))
    if verdict is not None:
        out.print(_verdict_table(verdict))
    else:
        out.print("[dim]no SLO set: add slo: to the scenario (or a class) for a PASS/MISS verdict[/]")
    if out_dir is not None:
        out.print(f"wrote {out_dir}/: {wrote}", highlight=False, soft_wrap=True)


def _run_streamed(
    path: Path, overrides: list[str], out_dir: Path, overwrite: bool, as_json: bool, quiet: bool
) -> None:
    """`run --stream`: simulate into a fresh folder that becomes `out_dir` only when complete."""
    import yaml
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.files import OutputError, output_folder
    from sim.runnable import load_scenario
    from sim.scenario import ScenarioError
    from sim.stream import run_streamed

    try:
        sc = load_scenario(path, overrides, streamed=True)
    except (ScenarioError, ValueError) as exc:
        fail(f"{path}: {exc}")
    columns = (
        TextColumn("[bold]simulating (streamed)"),
        BarColumn(),
        TextColumn("{task.completed:,} requests"),
        TimeElapsedColumn(),
    )
    try:
        with (
            output_folder(out_dir, overwrite) as tmp,
            Progress(*columns, console=err, disable=quiet or as_json, transient=True) as bar,
        ):
            task = bar.add_task("run", total=sc.stop.requests)
            result = run_streamed(sc, tmp, progress=lambda k: bar.advance(task, k))
            (tmp / "summary.json").write_text(json.dumps(result.summary.to_dict(), indent=2) + "\n")
            result.classes.to_csv(tmp / "classes.csv", index=False)
            scenario = sc.model_dump(mode="json")
            (tmp / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    except ScenarioError as exc:
        fail(f"{path}: {exc}")
    except (OutputError, OSError) as exc:
        fail(f"--out {out_dir}: nothing written: {exc}")
    from sim.report.readout import slo_verdict

    wrote = f"{_written(out_dir)} (no report.html: a streamed run's tables are too long for one page)"
    verdict = slo_verdict(sc, result.summary, result.classes)
    _print_run(sc, result.summary, as_json, out_dir, wrote, result.rejected, verdict)


@app.command()
def schema() -> None:
    """Print the scenario file's JSON Schema."""
    from sim.scenario import json_schema

    typer.echo(json_schema(), nl=False)


class CatalogKind(StrEnum):
    hardware = "hardware"
    models = "models"


@app.command()
def catalog(kind: CatalogKind, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the shipped presets with their key numbers and sources; hardware with its price per
    device-hour on each basis (cloud on-demand, TCO) or the reason it has none."""
    prices: dict[str, dict] = {}
    if kind is CatalogKind.hardware:
        from hardware import hardware_names, load_hardware
        from sim.cost import pricing
        from sim.scenario import CostAssumptions

        items = [load_hardware(n) for n in hardware_names()]
        prices = {a.name: pricing.bases(a, CostAssumptions()) for a in items}
        rows = [
            {
                "name": a.name,
                "kind": a.kind,
                "bf16_tflops": a.peak_flops.bf16 / 1e12,
                "fp8_tflops": (a.peak_flops.fp8 or 0) / 1e12,
                "memory_gb": a.main_tier.capacity_bytes / 1e9,
                "bandwidth_tb_s": a.main_tier.bandwidth_bytes_per_s / 1e12,
                "scale_up_gb_s": a.scale_up.bandwidth_bytes_per_s / 1e9 if a.scale_up else None,
                "tdp_w": a.power.tdp_w if a.power else None,
                "cloud_usd_per_hour": prices[a.name]["cloud"]["usd_per_device_hour"],
                "tco_usd_per_hour": prices[a.name]["tco"]["usd_per_device_hour"],
                "prices": prices[a.name],
                "source": a.main_tier.source,
            }
            for a in items
        ]
    else:
        from workloads import load_model, model_names

        items = [load_model(n) for n in model_names()]
        rows = [
            {
                "name": m.name,
                "params_b": m.params() / 1e9,
                "layers": m.num_layers,
                "kv_bytes_per_token": m.kv_bytes_per_token,
                "window_kv_bytes_per_token": m.window_kv_bytes_per_token,
                "state_bytes_per_seq": m.state_bytes_per_sequence,
                "max_context": m.context_limit_tokens,
                "source": m.source,
            }
            for m in items
        ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title=f"ctxsim {kind.value} presets")
    keys = [k for k in rows[0] if k not in ("source", "prices")]
    for key in keys:
        table.add_column(key, no_wrap=key == "name")
    for row in rows:
        table.add_row(*(number(row[k], missing="—" if k.endswith("usd_per_hour") else "") for k in keys))
    out.print(table)
    out.print("\n[bold]Sources[/]")
    for row in rows:
        out.print(f"[bold]{row['name']}[/]: {row['source']}", highlight=False)
    if prices:
        out.print("\n[bold]Prices[/] (USD per device-hour; see docs/cost.md)")
        for name, bases in prices.items():
            for basis, p in bases.items():
                text = p["source"] if p["usd_per_device_hour"] is not None else p["reason"]
                out.print(f"[bold]{name}[/] {basis}: {text}", highlight=False)


from sim.cli.workload import workload_app  # noqa: E402

app.add_typer(workload_app, name="workload")

from sim.cli.studies import register as register_sweep  # noqa: E402

register_sweep(app)

from sim.cli.fidelity import register as register_fidelity  # noqa: E402

register_fidelity(app)

from dashboard.cli import register as register_dashboard  # noqa: E402

register_dashboard(app)

from sim.cli.cache import register as register_cache  # noqa: E402

register_cache(app)

guard_commands(app)


def main() -> None:  # pragma: no cover
    app(prog_name="ctxsim")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
