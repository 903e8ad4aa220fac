"""`ctxsim sweep`, `report`, `plan` and `cost-curve`: the many-scenario commands.

`register(app)` adds them to the `ctxsim` Typer app; like the rest of the CLI they are the only
code here that prints or writes files, through the consoles and `fail` of `sim.cli.console`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from hardware.stacks import DEFAULT_STACK
from sim.cli.console import Overwrite, check_output_file, err, fail, out, write_output_file
from sim.cli.costs import BasisOption, PriceOption, basis_line, cost_assumptions, with_cost
from sim.format import seconds, usd
from sim.studies.verdict import DEFAULT_REQUESTS, Verdict

if TYPE_CHECKING:
    import pandas as pd

    from sim.studies.costcurve import Jump
    from sim.studies.planner import Candidate, Demand, Plan, SearchSpace
    from sim.studies.verdict import SloTarget


def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML: a base scenario and a grid or list")],
    out_dir: Annotated[Path, typer.Option("--out", help="results folder; run again to resume")],
    workers: Annotated[int, typer.Option(min=1, help="local worker processes")] = os.cpu_count() or 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray", help="Ray: 'local' starts one here, 'auto' joins a running cluster, or an address"
        ),
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="run again the points whose last run failed")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="set a field on every point: key.path=value (e.g. stack=none)"),
    ] = None,
) -> None:
    """Run every point of a sweep, one row each in OUT/results.parquet, plus OUT/report.html.

    Finished points are kept in OUT/points/ as they complete; running the same command again
    (after a crash, Ctrl-C or kill) runs only the points still missing. `--set` changes every
    point, over the file's own `set` section: `--set stack=none` runs the sweep on the catalog
    presets."""
    from sim.report.sweep import sweep_report
    from sim.studies import store
    from sim.studies.sweep import SweepError, load_sweep

    try:
        sw = load_sweep(sweep_file, overrides or ())
    except SweepError as exc:
        fail(str(exc))
    if ray is not None and importlib.util.find_spec("ray") is None:
        fail("--ray needs Ray installed: pip install 'ctxsim[ray]'")
    try:
        store.check_folder(out_dir)
    except ValueError as exc:
        fail(str(exc))
    ids = [p.point_id for p in sw.points]
    store.prepare(out_dir, sw.name, sw.params, ids)
    stored = store.saved(out_dir, failed_too=not retry_failed)
    foreign = store.saved(out_dir) - set(ids)
    if foreign:
        err.print(
            f"[yellow]note:[/] {len(foreign)} stored points in {out_dir} are not points of this sweep "
            "(its base, presets or values changed); results leave them out",
            highlight=False,
        )
    todo = [p for p in sw.points if p.point_id not in stored]
    if len(todo) < len(sw.points):
        err.print(
            f"resuming: {len(sw.points) - len(todo)} of {len(sw.points)} points already stored",
            highlight=False,
        )
    _run_points(todo, workers, ray, out_dir, ids, quiet)
    results = store.collect(out_dir, ids)
    store.write_results(out_dir, results, sweep_report(results, list(sw.params), sw.name))
    errors = results[results["error"].notna()]
    out.print(_results_table(results, sw.name))
    out.print(
        f"{len(results)} points ({len(errors)} failed) -> {out_dir}/results.parquet, {out_dir}/report.html",
        highlight=False,
    )
    if len(errors):
        first = errors.iloc[0]
        fail(
            f"{len(errors)} of {len(results)} points failed; point {first['point'] + 1} ({first['label']}): "
            f"{first['error']}",
            1,
        )


def _run_points(
    todo: list, workers: int, ray: str | None, out_dir: Path, ids: list[str], quiet: bool
) -> None:
    """Run the points still missing, storing each as it finishes, under a progress bar; an
    interruption or a dead worker fails with how many points are stored."""
    from concurrent.futures.process import BrokenProcessPool

    from sim.studies import store
    from sim.studies.sweep import execute

    columns = (
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("points"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    failed = 0
    with Progress(*columns, console=err, disable=quiet, transient=True) as bar:
        task = bar.add_task("sweep", total=len(todo), failed=0)
        try:
            for row in execute(todo, workers, ray):
                store.write_point(out_dir, row)
                failed += row["error"] is not None
                bar.update(task, advance=1, failed=failed)
        except KeyboardInterrupt:
            fail(f"interrupted; {_stored(store, out_dir, ids)}", 130)
        except BrokenProcessPool:
            fail(f"a worker process died; {_stored(store, out_dir, ids)}")
        except ConnectionError as exc:
            fail(f"--ray {ray}: {exc}")


def report(
    out_dir: Annotated[Path, typer.Argument(help="a sweep's results folder")],
) -> None:
    """Rebuild a sweep's results.parquet and report.html from its stored points."""
    from sim.report.sweep import sweep_report
    from sim.studies import store

    try:
        manifest = store.read_manifest(out_dir)
    except ValueError as exc:
        fail(str(exc))
    results = store.collect(out_dir, manifest["points"])
    if not len(results):
        fail(f"{out_dir}: no stored points yet")
    store.write_results(out_dir, results, sweep_report(results, manifest["params"], manifest["name"]))
    missing = len(manifest["points"]) - len(results)
    note = f" ({missing} points not run yet)" if missing else ""
    out.print(f"{len(results)} points{note} -> {out_dir}/report.html", highlight=False)


SWEEP_ROWS = 40
"""Points a sweep's closing table shows; the rest are in results.parquet and report.html."""


def _results_table(results: pd.DataFrame, name: str) -> Table:
    """A sweep's results, one row a point: its parameters, throughput, p99 latencies, SLO attainment,
    $/1M output tokens (the basis in the caption), and the error of a point that failed."""
    from rich.markup import escape

    from sim.format import percent, rate_ci, seconds_ci

    shown = results.sort_values("point").head(SWEEP_ROWS)
    bases = sorted(set(results["cost_basis"].dropna())) if "cost_basis" in results else []
    per_row = len(bases) > 1  # points priced on different bases: each row says its own
    caption = "" if per_row else f"$ on {bases[0]}" if bases else "no price on the basis asked"
    if len(results) > SWEEP_ROWS:
        caption += f"\n{len(results) - SWEEP_ROWS} more points in results.parquet and report.html"
    caption = caption.strip()
    table = Table(title=f"{name}: results", caption=caption, caption_justify="left")
    failed = bool(results["error"].notna().any())
    columns = ["#", "point", "throughput", "TTFT p99", "TPOT p99", "SLO attainment", "$ / 1M out"]
    columns += ["priced at"] * per_row + ["error"] * failed
    for col in columns:
        table.add_column(col, justify="left" if col in ("point", "error", "priced at") else "right")

    def value(row, key):
        v = row.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    for row in shown.to_dict("records"):
        cells = [str(row["point"] + 1), escape(str(row["label"]))]
        if value(row, "error") is not None:
            table.add_row(*cells, *[""] * (5 + per_row), f"[red]{escape(str(row['error']))}[/]")
            continue
        cells += [
            rate_ci(value(row, "throughput_rps")),
            seconds_ci(value(row, "ttft_p99_s")),
            seconds_ci(value(row, "tpot_p99_s")),
            percent(value(row, "slo_attainment")),
            usd(value(row, "cost_per_1m_output_tokens_usd"), cents=True),
        ]
        if per_row:
            cells.append(escape(str(value(row, "cost_basis") or "no price")))
        table.add_row(*cells, *[""] * failed)
    return table


def _stored(store, out_dir: Path, ids: list[str]) -> str:
    done = len(store.saved(out_dir) & set(ids))
    return f"{done} of {len(ids)} points stored, run the same command to resume"


def _csv(text: str | None, option: str, cast=str) -> list:

    if text is None:
        return []
    try:
        items = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} {text!r}: expected a comma-separated list")
    if not items:
        fail(f"{option}: empty list")
    return items


def plan(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML: model, workload, scheduler")],
    qps: Annotated[float, typer.Option(help="offered load, requests/s")],
    slo: Annotated[list[str], typer.Option(help="target METRIC_pNN=DURATION, e.g. ttft_p99=2s; repeatable")],
    hardware: Annotated[str | None, typer.Option(help="presets, comma-separated (default: its own)")] = None,
    tp: Annotated[str, typer.Option(help="comma-separated tensor-parallel degrees")] = "1,2,4,8",
    ep: Annotated[str, typer.Option(help="comma-separated expert-parallel degrees (MoE)")] = "1",
    attention_dp: Annotated[str, typer.Option(help="comma-separated data-parallel attention ranks")] = "1",
    pp: Annotated[str, typer.Option(help="comma-separated pipeline depths")] = "1",
    cp: Annotated[str, typer.Option(help="comma-separated context-parallel degrees")] = "1",
    max_devices: Annotated[int, typer.Option(min=1, help="most devices a configuration may use")] = 64,
    requests: Annotated[
        int, typer.Option(min=10, help="requests simulated per configuration at first (more when borderline)")
    ] = DEFAULT_REQUESTS,
    top: Annotated[int, typer.Option(min=1, help="configurations to rank")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="the plan as one JSON object")] = False,
    disaggregated: Annotated[bool, typer.Option(help="also try split prefill and decode pools")] = False,
    seed: Annotated[
        int | None, typer.Option(help="random seed of the workload (default: the scenario's)")
    ] = None,
    basis: BasisOption = None,
    price: PriceOption = None,
    stack: Annotated[
        str | None, typer.Option(help="serving stack profile (default: the scenario's, else typical)")
    ] = None,
    margin: Annotated[
        bool,
        typer.Option(
            help="judge each SLO at the pessimistic edge of the stack's 80% band from held-out "
            "measurements, not at the simulated latency"
        ),
    ] = False,
) -> None:
    """Cheapest hardware x tp x ep x attention_dp x pp x cp x replicas (optionally in prefill and
    decode pools) that meets the SLOs at a load, with the runners-up; splits are pruned by memory and
    the roofline before any is simulated."""
    from hardware.catalog import read_yaml
    from sim.scenario import rebase_paths
    from sim.studies.planner import Demand, SearchSpace
    from sim.studies.verdict import PlanError, parse_slo

    if not math.isfinite(qps) or qps <= 0:
        fail(f"--qps {qps}: give a finite load above 0 requests/s")
    presets = _known_hardware(hardware)
    try:
        base = with_cost(rebase_paths(read_yaml(scenario), scenario.parent), basis, price)
        if seed is not None:
            base = {**base, "seed": seed}
        if stack is not None:
            base = {**base, "stack": stack}
        demand = Demand(qps, tuple(parse_slo(s, margin) for s in slo), requests)
        space = SearchSpace(
            presets,
            tuple(_csv(tp, "--tp", int)),
            max_devices,
            disaggregated,
            eps=tuple(_csv(ep, "--ep", int)),
            attention_dps=tuple(_csv(attention_dp, "--attention-dp", int)),
            pps=tuple(_csv(pp, "--pp", int)),
            cps=tuple(_csv(cp, "--cp", int)),
        )
        result = _plan_with_spinner(base, demand, space, top)
    except (PlanError, ValueError) as exc:
        fail(f"{scenario}: {exc}")
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    _print_plan(result)


def _extra_splits(arch, cps: list[int], eps: list[int]) -> list:
    """The cost curve's extra groups: tp (widest up to 8 dividing the heads) x cp for each cp above
    1, and attention_dp = ep = each ep above 1 (tp 1)."""
    from sim.cost.parallelism import Parallelism

    heads = arch.num_heads or 1
    tp = max(t for t in (1, 2, 4, 8) if heads % t == 0)
    out = [Parallelism(tp, cp=c) for c in cps if c > 1]
    return out + [Parallelism(attention_dp=e, ep=e) for e in eps if e > 1]


def _known_hardware(hardware: str | None) -> tuple[str, ...]:
    """The --hardware presets, each loaded once so that a wrong name fails before any simulation."""
    from hardware.catalog import load_hardware

    presets = tuple(_csv(hardware, "--hardware"))
    try:
        for name in presets:
            load_hardware(name)
    except ValueError as exc:
        fail(f"--hardware: {exc}")
    return presets


def _plan_with_spinner(base: dict, demand: Demand, space: SearchSpace, top: int) -> Plan:
    """The planner's answer, with a spinner on stderr naming each configuration as it is simulated."""
    from sim.studies.planner import plan as make_plan

    with err.status("planning", spinner="dots") as status:
        return make_plan(
            base, demand, space, top=top, progress=lambda text: status.update(f"simulating {text}")
        )


def _print_plan(result: Plan) -> None:
    """The plan as a table (ranked, each with the run one replica short, then misses), what a
    borderline verdict means when there is one, and the configurations left unranked with why."""
    from sim.report.readout import BORDERLINE

    limits = ", ".join(f"{s.name} ≤ {seconds(s.limit_s)}" for s in result.slos)
    if result.best is None:
        out.print(
            f"[red]No configuration within {result.max_devices} devices meets {limits} at "
            f"{result.qps:g} req/s.[/]"
        )
    table = Table(
        title=f"Cheapest for {result.qps:g} req/s with {limits} ({result.simulations} simulations of "
        f"{result.requests:,} requests or more, {result.wall_s:.1f} s)"
    )
    for col in (
        "",
        "replicas x hardware (tp x pp)",
        "verdict",
        "devices",
        "$/hour",
        "$/1M tokens in, out",
        *(f"{s.name} (headroom)" for s in result.slos),
        "judged on",
    ):
        left = col in ("", "replicas x hardware (tp x pp)", "verdict")
        table.add_column(col, justify="left" if left else "right")
    for rank, (c, below) in enumerate(zip(result.ranked, result.below, strict=True), start=1):
        table.add_row("best" if rank == 1 else f"#{rank}", *_candidate_cells(c, result.slos))
        if below is not None:
            table.add_row("  1 fewer", *_candidate_cells(below, result.slos))
    for c in result.misses:
        table.add_row("misses", *_candidate_cells(c, result.slos))
    out.print(table)
    priced = {c.hardware: c.cost_basis for c in (*result.ranked, *result.misses) if c.cost_basis}
    for hardware, basis in priced.items():
        out.print(f"$ for {hardware}: {basis}", highlight=False, soft_wrap=True)
    if any(c.verdict == Verdict.borderline for c in (*result.ranked, *result.misses)):
        out.print(f"[yellow]{BORDERLINE}[/]", highlight=False)
    if result.skipped:
        out.print(f"[bold]Not ranked[/] ({len(result.skipped)}):")
        for s in result.skipped:
            out.print(f"  {s.hardware} tp={s.tp}: {s.reason}", highlight=False)


def _candidate_cells(c: Candidate, slos: tuple[SloTarget, ...]) -> list[str]:
    """One configuration's cells after its label: layout, verdict, devices, prices, each SLO's value
    and headroom, and how many simulated requests it was judged on."""
    per_1m = ", ".join(
        usd(v, cents=True) for v in (c.cost_per_1m_input_tokens_usd, c.cost_per_1m_output_tokens_usd)
    )
    measured = [
        "—"
        if c.headroom[s.name] is None
        else f"{seconds(c.summary.metric(s.key))} ({c.headroom[s.name]:+.0%})"
        for s in slos
    ]
    extra = "".join(f" x {k} {v}" for k, v in c.split.items() if k != "pp")
    layout = f"{c.replicas} x {c.label} ({c.tp} x {c.pp}{extra})"
    prices = [usd(c.cost_per_hour_usd, cents=True), per_1m]
    return [layout, _verdict_cell(c.verdict), str(c.devices), *prices, *measured, f"{c.requests:,} req"]


def _verdict_cell(verdict: str) -> str:
    """A verdict coloured as it reads: meets green, borderline yellow, misses red."""
    colour = {Verdict.meets: "green", Verdict.borderline: "yellow"}.get(verdict, "red")
    return f"[{colour}]{verdict}[/]"


def cost_curve(
    model: Annotated[str, typer.Option(help="model preset, YAML file or Hugging Face config.json")],
    hardware: Annotated[str, typer.Option(help="comma-separated hardware presets or YAML files")],
    max_context: Annotated[int | None, typer.Option(min=2, help="longest prompt (default: model's)")] = None,
    min_context: Annotated[int, typer.Option(min=1, help="shortest prompt")] = 1000,
    output: Annotated[int, typer.Option("--output", min=1, help="output tokens per request")] = 1000,
    max_batched_tokens: Annotated[
        int, typer.Option(min=1, help="the scheduler's token budget a step (sizes the activation reserve)")
    ] = 8192,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the figure to this HTML file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="jumps and curve as one JSON object")] = False,
    cp: Annotated[str, typer.Option(help="also cost tp 8 x these context-parallel degrees")] = "1",
    ep: Annotated[str, typer.Option(help="also cost these expert-parallel degrees with DP attention")] = "1",
    overwrite: Overwrite = False,
    basis: BasisOption = None,
    price: PriceOption = None,
    stack: Annotated[
        str, typer.Option(help="serving stack profile each device is served with (typical, vllm, ...)")
    ] = DEFAULT_STACK,
) -> None:
    """Cost per request against prompt length per hardware, and where a request outgrows a device;
    with --cp or --ep, context- or expert-parallel groups are costed beside tp x pp."""
    from hardware import apply_stack, load_hardware, load_stack
    from sim.cost.estimate import Memory
    from sim.report.figures import cost_curve as curve_figure
    from sim.studies.costcurve import cost_curve as make_curve
    from workloads import load_model

    check_output_file(out_file, overwrite)
    cost = cost_assumptions(None, basis, price)
    try:
        arch = load_model(model)
        profile = load_stack(stack)
        hws = [apply_stack(load_hardware(h), profile) for h in _csv(hardware, "--hardware")]
        top = max_context or arch.context_limit_tokens or 1_000_000
        memory = Memory(max_batched_tokens=max_batched_tokens)
        extra = _extra_splits(arch, _csv(cp, "--cp", int), _csv(ep, "--ep", int))
        curve, jumps = make_curve(arch, hws, output, min_context, top, cost=cost, extra=extra, memory=memory)
    except ValueError as exc:
        fail(str(exc))
    if out_file is not None:
        import plotly.io as pio

        html = pio.to_html(curve_figure(curve, jumps, arch.name, output), include_plotlyjs=True)
        write_output_file(out_file, lambda p: p.write_text(html), overwrite)
    if as_json:
        rows = json.loads(curve.to_json(orient="records"))
        typer.echo(
            json.dumps(
                {
                    "model": arch.name,
                    "output_tokens": output,
                    "cost_basis": {hw.name: basis_line(hw, cost) for hw in hws},
                    "jumps": [asdict(j) for j in jumps],
                    "curve": rows,
                }
            )
        )
        return
    title = f"{arch.name}: cost per request by prompt length ({output:,} output tokens)"
    out.print(_curve_table(curve, jumps, top, title))
    for hw in hws:
        out.print(f"$ for {hw.name}: {basis_line(hw, cost)}", highlight=False, soft_wrap=True)
    for j in jumps:
        after = f"{j.devices_after} devices" if j.devices_after else "more devices than any group searched"
        out.print(
            f"{j.hardware}: from {j.context_tokens:,} prompt tokens a request needs {after} "
            f"(was {j.devices_before})",
            highlight=False,
        )
    if out_file is not None:
        out.print(f"wrote {out_file}")


def _curve_table(curve: pd.DataFrame, jumps: list[Jump], longest: int, title: str) -> Table:
    """The curve's rows worth reading: one per doubling of the prompt, both sides of each jump and
    the longest prompt."""
    from sim.studies.costcurve import STEPS_PER_DOUBLING

    table = Table(title=title)
    for col in (
        "hardware",
        "prompt tokens",
        "fewest devices",
        "cheapest tp x pp",
        "batch",
        "$/1K requests",
        "$/1M prompt tokens",
    ):
        table.add_column(col, justify="left" if col == "hardware" else "right")
    edges = {j.context_tokens for j in jumps} | {j.context_tokens - 1 for j in jumps}
    grid = curve.groupby("hardware", sort=False).cumcount()
    shown = (grid % STEPS_PER_DOUBLING == 0) | curve["context_tokens"].isin(edges | {longest})
    for r in curve[shown].itertuples():
        if not r.fits:
            table.add_row(r.hardware, f"{r.context_tokens:,}", "does not fit", "", "", "", "")
            continue
        per_1k = None if r.cost_per_request_usd is None else r.cost_per_request_usd * 1e3
        table.add_row(
            r.hardware,
            f"{r.context_tokens:,}",
            f"{r.min_devices:.0f}",
            f"{r.tp:.0f} x {r.pp:.0f}",
            f"{r.batch:.0f}",
            usd(per_1k, cents=True),
            usd(r.cost_per_1m_input_tokens_usd, cents=True),
        )
    return table


def register(app: typer.Typer) -> None:
    """Add `sweep`, `report`, `plan` and `cost-curve` to `app`."""
    app.command()(sweep)
    app.command()(report)
    app.command()(plan)
    app.command("cost-curve")(cost_curve)
