"""`ctxsim validate`, `ctxsim calibrate` and `ctxsim profile`: how close ctxsim is to measured hardware.

`register(app)` adds the three commands to the main typer app; like the rest of the CLI, these are the
only functions here that print or write files.
"""

from __future__ import annotations

import csv
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sim.cli.console import Overwrite, check_output_file, err, fail, out, write_output_file
from sim.format import number


class Device(StrEnum):
    cuda = "cuda"
    cpu = "cpu"


def _fmt(x: float) -> str:
    """A measured or predicted value: blank when absent, whole from 1e5 up (token rates read better
    as 123,456 than as 1.235e+05)."""
    return number(x, missing="", whole_from=1e5)


def validate(
    data: Annotated[Path, typer.Argument(help="measurements CSV (row_id, model, gpu, metric, value, ...)")],
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines: one object per row, then a summary")
    ] = False,
    models: Annotated[Path | None, typer.Option(help="folder of extra model files <name>.yaml|.json")] = None,
    hardware: Annotated[
        list[Path] | None,
        typer.Option(
            "--hardware", help="hardware YAML (e.g. calibrated) replacing the preset of the same name"
        ),
    ] = None,
    splitwise: Annotated[
        Path | None, typer.Option(help="also validate splitwise-sim's perf_model.csv")
    ] = None,
    engine: Annotated[
        bool, typer.Option(help="simulate offline-throughput and serving-benchmark rows with the engine")
    ] = True,
) -> None:
    """Predict every measured row and print measured vs predicted, error %, median / p90 error by
    metric group and by source, how many rows were predicted, and why the others were skipped."""
    import pandas as pd
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.fidelity.validate import (
        MeasurementError,
        coverage,
        hardware_overrides,
        read_measurements,
        skip_reasons,
        splitwise_measurements,
        summarize,
        summarize_by_source,
    )
    from sim.fidelity.validate import validate as run_validate

    columns = (
        TextColumn("[bold]predicting"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} rows"),
        TimeElapsedColumn(),
    )
    try:
        df = read_measurements(data)
        if splitwise is not None:
            df = pd.concat([df, splitwise_measurements(splitwise)], ignore_index=True)
        devices = hardware_overrides(hardware or [])
        with Progress(*columns, console=err, disable=as_json, transient=True) as bar:
            task = bar.add_task("validate", total=len(df))
            results = run_validate(df, models, devices, engine, progress=lambda k: bar.advance(task, k))
    except (MeasurementError, ValueError) as exc:
        fail(str(exc))
    summary = summarize(results)
    by_source = summarize_by_source(results)
    reasons = skip_reasons(results)
    predicted, given = coverage(results)
    if as_json:
        for r in results.to_dict("records"):
            typer.echo(json.dumps(_json_ready(r)))
        typer.echo(
            json.dumps(
                {
                    "summary": summary.to_dict("records"),
                    "by_source": [_json_ready(r) for r in by_source.to_dict("records")],
                    "coverage": {"predicted": predicted, "rows": given},
                    "skipped": reasons.to_dict("records"),
                }
            )
        )
        return
    table = Table(title=f"ctxsim vs measured: {data.name}")
    for col in ("row", "case", "metric", "regime", "measured", "predicted", "error %", "note"):
        table.add_column(col, justify="right" if col in ("measured", "predicted", "error %") else "left")
    for r in results.itertuples(index=False):
        table.add_row(
            str(r.row_id),
            r.case,
            r.metric,
            r.regime,
            _fmt(r.measured),
            _fmt(r.predicted),
            _fmt(r.error_pct),
            r.skipped_reason or r.flags,
        )
    out.print(table)
    stats = Table(title="absolute error by metric group (skipped rows not scored)")
    for col in summary.columns:
        stats.add_column(col)
    for r in summary.itertuples(index=False):
        stats.add_row(*(_fmt(v) if isinstance(v, float) else str(v) for v in r))
    out.print(stats)
    sources = Table(title="absolute error by source")
    for col in by_source.columns:
        sources.add_column(col)
    for r in by_source.itertuples(index=False):
        sources.add_row(*(_fmt(v) if isinstance(v, float) else str(v) for v in r))
    out.print(sources)
    out.print(
        f"predicted {predicted} of {given} rows ({predicted / given:.0%})" if given else "no rows",
        highlight=False,
    )
    if len(reasons):
        skipped = Table(title="skipped rows by reason")
        skipped.add_column("rows", justify="right")
        skipped.add_column("reason")
        for r in reasons.itertuples(index=False):
            skipped.add_row(str(r.rows), r.reason)
        out.print(skipped)


def _json_ready(record: dict) -> dict:
    """A table row as JSON takes it: NaN becomes null, numpy integers plain ints."""
    return {
        k: None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v
        for k, v in record.items()
    }


def calibrate(
    hardware: Annotated[str, typer.Option(help="preset name or YAML whose peaks the fractions are of")],
    output: Annotated[Path, typer.Option("-o", "--output", help="calibrated hardware YAML to write")],
    measurements: Annotated[
        list[Path] | None,
        typer.Argument(
            help="kernel CSVs from `ctxsim profile`, NCCL all-reduce tables (size(kb), time(us)), or "
            "aiconfigurator system folders (.../data/h100_sxm)"
        ),
    ] = None,
    holdout: Annotated[
        bool,
        typer.Option(
            help="fit on two thirds of the kernel shapes, report the held-out third, write the partial fit"
        ),
    ] = False,
    steps: Annotated[
        Path | None,
        typer.Option(
            help="measured tpot/ttft rows (validate's CSV format) to fit the per-step framework overhead, "
            "tree all-reduce hop latency and achieved all-reduce bandwidth fraction from"
        ),
    ] = None,
    holdout_tp: Annotated[
        int | None, typer.Option(help="leave the --steps rows at this TP out of the fit and score them")
    ] = None,
    models: Annotated[Path | None, typer.Option(help="folder of extra model files <name>.yaml|.json")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Fit efficiency curves from measured kernels (and framework overheads from measured steps) and
    write a hardware YAML the cost model uses."""
    from hardware.catalog import load_hardware
    from sim.fidelity import calibrate as cal
    from sim.fidelity.overheads import fit_step_file

    if not measurements and steps is None:
        fail("give kernel measurements, --steps, or both")
    check_output_file(output, overwrite, "--output")
    fit_rows = held = step_fit = None
    try:
        hw = fitted = load_hardware(hardware)
        sources = cal.data_sources(measurements or [])
        if measurements:
            fitted, fit_rows, held = cal.fit_kernel_files(measurements, hw, holdout)
        if steps is not None:
            step_fit = fit_step_file(fitted, steps, holdout_tp, models)
            fitted, sources = step_fit.hw, (*sources, steps.name)
    except ValueError as exc:
        fail(str(exc))
    if step_fit is not None:
        _print_step_fit(step_fit)
    reports = [("fitted rows (in-sample)", fit_rows)] if fit_rows is not None else []
    if held is not None and len(held):
        reports.append(("held out (never read by the fit)", held))
    for title, part in reports:
        summary = cal.error_summary(cal.kernel_errors(part, fitted))
        table = Table(title=f"{title}: |predicted - measured| / measured, %")
        for col in summary.columns:
            table.add_column(col)
        for r in summary.itertuples(index=False):
            table.add_row(*(_fmt(v) if isinstance(v, float) else str(v) for v in r))
        out.print(table)
    text = cal.calibrated_yaml(fitted, sources)
    write_output_file(output, lambda p: p.write_text(text), overwrite, "--output")
    err.print(f"wrote {output}", highlight=False)


def _print_step_fit(step_fit) -> None:
    """The fitted framework overheads, and the step rows' error before and after them."""
    knobs = step_fit.knobs
    err.print(
        f"framework overheads from {step_fit.fitted_rows} step rows: {knobs.step_overhead_s * 1e3:.3g} ms "
        f"per step and {knobs.seq_overhead_s * 1e6:.3g} us per sequence, "
        f"{knobs.hop_latency_s * 1e6:.3g} us per tree all-reduce hop, grouped expert GEMMs at "
        f"{knobs.moe_gemm:.2f} of dense speed, all-reduces at {knobs.collective:.2f} of the link's "
        "measured bandwidth",
        highlight=False,
    )
    table = Table(title="step rows: |predicted - measured| / measured, median / p90 %")
    for col in ("rows", "n", "before", "after"):
        table.add_column(col)
    for score in step_fit.scores:
        cells = [f"{median:.1f} / {p90:.1f}" for median, p90 in (score.before, score.after)]
        table.add_row(score.label, str(score.rows), *cells)
    out.print(table)


def profile(
    model: Annotated[str, typer.Option(help="preset name, YAML file or Hugging Face config.json")],
    output: Annotated[Path, typer.Option("-o", "--output", help="kernel CSV to write")],
    device: Annotated[Device, typer.Option(help="where to measure")] = Device.cuda,
    tiny: Annotated[
        bool, typer.Option(help="shrunken shapes and counts: the whole path in seconds on a CPU")
    ] = False,
    overwrite: Overwrite = False,
) -> None:
    """Time the model's GEMMs, attention, copies (and all-reduce on several GPUs) and whole decoder steps
    with PyTorch, random weights; writes the CSV `ctxsim calibrate` reads."""
    from sim.fidelity import profile as prof
    from workloads import load_model

    check_output_file(output, overwrite, "--output")
    try:
        shapes = prof.model_shapes(load_model(model))
    except ValueError as exc:
        fail(str(exc))
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("profile needs PyTorch: pip install 'ctxsim[profile]'")
    rows: list[dict] = []
    try:
        prof.measure(
            prof.tiny(shapes) if tiny else shapes, prof.TINY if tiny else prof.FULL, device.value, rows.append
        )
    except ValueError as exc:
        fail(str(exc))

    def write_csv(path: Path) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, prof.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    write_output_file(output, write_csv, overwrite, "--output")
    err.print(f"wrote {output}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(calibrate)
    app.command()(profile)
