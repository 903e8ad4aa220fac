"""The text of docs/validation.md: tables and findings rendered from benchmarks/validate.py's results.

Everything here formats numbers the pipeline computed; nothing is fitted or predicted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.fidelity import calibrate as cal
from sim.fidelity import kernels as kernel_tables
from sim.fidelity import names, serving
from sim.fidelity import validate as val

# docs/validation.md with `{name}` fields for the tables and findings `render` computes.
TEMPLATE = Path(__file__).with_name("validation_template.md").read_text(encoding="utf-8")
# Targets: median absolute error (%) after calibration, per metric group and regime.
TARGETS = {
    ("throughput", "decode"): 10.0,
    ("tpot", "decode"): 10.0,
    ("throughput", "prefill"): 15.0,
    ("ttft", "prefill"): 15.0,
}


def md_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("" if pd.isna(v) else format(v, floatfmt))
            else:
                cells.append(str(v).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _with(results: pd.DataFrame, rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`results` with the measurement rows' `columns` it does not carry itself, joined by row_id."""
    missing = [c for c in columns if c not in results.columns]
    return results.merge(rows[["row_id", *missing]], on="row_id") if missing else results


def _cell(summary: pd.DataFrame, group: str, regime: str) -> str:
    """'median / p90 (n)' of one group and regime of a `val.summarize` table."""
    hit = summary[(summary["group"] == group) & (summary["regime"] == regime)]
    if hit.empty:
        return ""
    r = hit.iloc[0]
    return f"{r['median_abs_error_pct']:.1f} / {r['p90_abs_error_pct']:.1f} ({r['count']})"


def _columns(
    parts: dict[str, pd.DataFrame], regime: pd.Series, met: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per metric group and regime, one 'median / p90 (n)' column per result set. Every set
    labels a row with its kernel-calibrated regime (`regime`, by row_id), so columns count the same
    rows; with `met` ({result set: column label}), the target and whether each of those sets meets it."""
    summaries = {
        name: val.summarize(res.assign(regime=res["row_id"].map(regime).fillna(res["regime"])))
        for name, res in parts.items()
    }
    keys = sorted(
        {(g, r) for sm in summaries.values() for g, r in zip(sm["group"], sm["regime"], strict=True)}
    )
    out = []
    for group, reg in keys:
        rec = {"group": group, "regime": reg}
        target = TARGETS.get((group, reg))
        if met:
            rec["target (median)"] = f"<= {target:.0f}%" if target else ""
        rec.update({name: _cell(sm, group, reg) for name, sm in summaries.items()})
        for name, label in (met or {}).items():
            sm = summaries[name]
            hit = sm[(sm["group"] == group) & (sm["regime"] == reg)]
            ok = target is not None and not hit.empty and hit.iloc[0]["median_abs_error_pct"] <= target
            rec[label] = ("met" if ok else "**missed**") if target else ""
        out.append(rec)
    return pd.DataFrame(out)


def _knobs(folds: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for fold, knobs in folds.items():
        for (source, preset), fit in sorted(knobs.items()):
            k = fit.knobs
            hop = "link's own (no TP > 1 row)" if k.hop_latency_s is None else f"{k.hop_latency_s * 1e6:.1f}"
            rows.append(
                {
                    "stack": source,
                    "GPU": preset,
                    "fold": fold,
                    "fit rows": fit.rows,
                    "step overhead ms": f"{k.step_overhead_s * 1e3:.2f}",
                    "per sequence us": f"{k.seq_overhead_s * 1e6:.1f}",
                    "tree all-reduce hop us": hop,
                    "grouped expert GEMMs (x dense speed)": f"{k.moe_gemm:.2f}",
                    "all-reduce (x measured link bandwidth)": f"{k.collective:.2f}",
                }
            )
    return pd.DataFrame(rows).sort_values(["stack", "GPU", "fold"], kind="stable")


def _left_out(folds: tuple[dict, ...], results: pd.DataFrame) -> str:
    """The fit rows each fold's stacks left out as faster than the physical roofline, in words."""
    cases = results.set_index("row_id")
    items = [
        f"{row_id} ({source}: {cases.at[row_id, 'case']}, measured {cases.at[row_id, 'measured']:.3g} "
        f"{cases.at[row_id, 'unit']})"
        for knobs in folds
        for (source, _), fit in sorted(knobs.items())
        for row_id in fit.faster_than_roofline
    ]
    return "; ".join(items) if items else "none"


def _faster_than_roofline(results: pd.DataFrame, roofline: pd.DataFrame) -> tuple[int, int]:
    """(rows predicted faster than the roofline, rows scored) over rows both scored."""
    both = results.merge(roofline[["row_id", "predicted"]], on="row_id", suffixes=("", " roofline"))
    both = both[(both["skipped_reason"] == "") & both["predicted roofline"].notna()]
    tput = both["group"] == "throughput"
    faster = np.where(
        tput,
        both["predicted"] > both["predicted roofline"] * (1 + 1e-9),
        both["predicted"] < both["predicted roofline"] * (1 - 1e-9),
    )
    return int(faster.sum()), len(both)


def _by(results: pd.DataFrame, rows: pd.DataFrame, key: str) -> pd.DataFrame:
    scored = _with(results[results["skipped_reason"] == ""], rows, [key])
    scored = scored.assign(abs_err=scored["error_pct"].abs())
    return (
        scored.groupby([key, "group"])["abs_err"]
        .agg(count="count", median_abs_error_pct="median", p90_abs_error_pct=lambda s: s.quantile(0.9))
        .reset_index()
    )


def _pooled(stack: dict) -> pd.DataFrame:
    """Both folds' held-out rows, each row once, labelled with the half of the shapes it belongs to."""
    return pd.concat(
        [
            stack["held"].assign(split="odd (fold 1 scores)"),
            stack["swapped_held"].assign(split="even (fold 2 scores)"),
        ],
        ignore_index=True,
    )


def _stack_findings(after: pd.DataFrame, stack: dict, pooled: pd.DataFrame, rows: pd.DataFrame) -> dict:
    """Numbers the Findings quote, computed here so the prose cannot drift from the tables."""
    held = _with(pooled[pooled["skipped_reason"] == ""], rows, ["source_id", "model"])
    kern = _with(after[after["skipped_reason"] == ""], rows, ["source_id", "model"])
    sw_ttft = held[(held["source_id"] == "SPLITWISE-SIM") & (held["metric"] == "ttft")]
    v09_ttft = held[(held["source_id"] == "TRTLLM-PERF-v0.9") & (held["metric"] == "ttft")]
    moe = held["model"].str.contains("Mixtral") & (held["group"] == "throughput")
    moe_kern = kern["model"].str.contains("Mixtral") & (kern["group"] == "throughput")
    target = TARGETS[("ttft", "prefill")]
    ttft = {
        name: float(
            res.loc[(res["skipped_reason"] == "") & (res["group"] == "ttft"), "error_pct"].abs().median()
        )
        for name, res in (
            ("fold 1", stack["held"]),
            ("fold 2", stack["swapped_held"]),
            ("both folds", pooled),
        )
    }
    verdict = ", ".join(f"{name} {v:.1f}% ({'met' if v <= target else 'missed'})" for name, v in ttft.items())
    return {
        "ttft_verdict": f"median error against a target of {target:.0f}%: {verdict}.",
        "fold_gap": f"{abs(ttft['fold 1'] - ttft['fold 2']):.1f}",
        "sw_ttft": f"{sw_ttft['error_pct'].abs().median():.1f}%",
        "sw_ttft_n": len(sw_ttft),
        "sw_ttft_worst": f"{(sw_ttft['measured'] / sw_ttft['predicted']).max():.1f}x",
        "v09_ttft": f"{v09_ttft['error_pct'].abs().median():.1f}%",
        "v09_ttft_n": len(v09_ttft),
        "v09_ttft_worst": f"{(v09_ttft['predicted'] / v09_ttft['measured']).max():.1f}x",
        "moe_held": f"{held.loc[moe, 'error_pct'].median():+.1f}%",
        "moe_held_n": int(moe.sum()),
        "moe_kern": f"{kern.loc[moe_kern, 'error_pct'].median():+.1f}%",
    }


FOLD1, FOLD2, BOTH = "kernel + stack, fold 1", "kernel + stack, fold 2", "kernel + stack, both folds"


def _headline(before, after, stack: dict, pooled: pd.DataFrame, regime: pd.Series) -> pd.DataFrame:
    """Median error per group and regime: presets, kernel-calibrated, each stack fold and both."""
    return _columns(
        {
            "presets": before,
            "kernel-calibrated": after,
            FOLD1: stack["held"],
            FOLD2: stack["swapped_held"],
            BOTH: pooled,
        },
        regime,
        met={FOLD1: "met (fold 1)", FOLD2: "met (fold 2)", BOTH: "met (both folds)"},
    )


def _fit_table(after: pd.DataFrame, stack: dict, regime: pd.Series) -> pd.DataFrame:
    """Fold 1's fit rows, kernel-calibrated and with the stack knobs fitted on them (in-sample)."""
    fit_ids = set(stack["fit"]["row_id"])
    return _columns(
        {
            "kernel-calibrated, fold 1 fit rows": after[after["row_id"].isin(fit_ids)],
            "kernel + stack, fold 1 fit rows (in-sample)": stack["fit"],
        },
        regime,
    )


def _by_source_held(
    after: pd.DataFrame, pooled: pd.DataFrame, stack: dict, rows: pd.DataFrame
) -> pd.DataFrame:
    """Per source and group: kernel-calibrated, each fold's held-out and both folds' median error."""
    return (
        _by(after, rows, "source_id")
        .merge(_by(pooled, rows, "source_id"), on=["source_id", "group"], suffixes=(" kernel", " stack"))
        .merge(
            _by(stack["held"], rows, "source_id")[["source_id", "group", "median_abs_error_pct"]],
            on=["source_id", "group"],
        )
        .merge(
            _by(stack["swapped_held"], rows, "source_id")[["source_id", "group", "median_abs_error_pct"]],
            on=["source_id", "group"],
            suffixes=(" fold 1", " fold 2"),
        )[
            [
                "source_id",
                "group",
                "count stack",
                "median_abs_error_pct kernel",
                "median_abs_error_pct fold 1",
                "median_abs_error_pct fold 2",
                "median_abs_error_pct stack",
                "p90_abs_error_pct stack",
            ]
        ]
        .rename(
            columns={
                "count stack": "rows",
                "median_abs_error_pct kernel": "kernel-calibrated median",
                "median_abs_error_pct fold 1": "fold 1 median",
                "median_abs_error_pct fold 2": "fold 2 median",
                "median_abs_error_pct stack": "both folds median",
                "p90_abs_error_pct stack": "both folds p90",
            }
        )
    )


def _per_row(before: pd.DataFrame, after: pd.DataFrame, pooled: pd.DataFrame) -> pd.DataFrame:
    """Every row: measured, predicted before and after kernel calibration and by the held-out stack
    fold, with why a row was skipped."""
    stacked = pooled.set_index("row_id")
    per_row = before[
        ["row_id", "case", "metric", "regime", "unit", "measured", "predicted", "error_pct"]
    ].rename(columns={"predicted": "predicted before", "error_pct": "error % before"})
    per_row = per_row.assign(
        **{
            "predicted after": after["predicted"],
            "error % after": after["error_pct"],
            "flags after": after["flags"],
            "shapes": per_row["row_id"].map(stacked["split"]),
            "predicted stack (held out)": per_row["row_id"].map(stacked["predicted"]),
            "error % stack (held out)": per_row["row_id"].map(stacked["error_pct"]),
            "skipped": after["skipped_reason"],
        }
    )
    return per_row


def _profile_table(profile_rows: pd.DataFrame) -> pd.DataFrame:
    """H200 profile rows: measured and predicted by the preset and the calibrated device."""
    prof = profile_rows.assign(
        model=profile_rows["model"].where(profile_rows["model"] == "", "(see shapes)"),
        shape=profile_rows.apply(_shape, axis=1),
    )
    return prof[
        ["op", "dtype", "shape", "time_s", "predicted_uncalibrated_s", "predicted_s", "error_pct"]
    ].rename(
        columns={
            "time_s": "measured s",
            "predicted_uncalibrated_s": "predicted s (preset)",
            "predicted_s": "predicted s (calibrated)",
            "error_pct": "error % (calibrated)",
        }
    )


def _h200_variants(before: pd.DataFrame, after: pd.DataFrame, transfer: pd.DataFrame) -> pd.DataFrame:
    """H200 rows' error with no calibration, its own profile, and the H100's curves transferred."""
    h200_ids = set(transfer["row_id"])
    return pd.concat(
        [
            val.summarize(before[before["row_id"].isin(h200_ids)]).assign(calibration="none (preset)"),
            val.summarize(after[after["row_id"].isin(h200_ids)]).assign(
                calibration="H200 profile (PyTorch kernels)"
            ),
            val.summarize(transfer).assign(calibration="H100 TensorRT-LLM kernels, transferred"),
        ]
    )[["calibration", *val.SUMMARY_COLUMNS]]


def render(before, after, transfer, kernel_study, profile_rows, rows, stack, load) -> str:
    assert rows["row_id"].is_unique
    regime = after.set_index("row_id")["regime"]
    pooled = _pooled(stack)
    faster1, checked1 = _faster_than_roofline(stack["held"], stack["roofline"])
    faster2, checked2 = _faster_than_roofline(stack["swapped_held"], stack["swapped_roofline"])
    faster, checked = faster1 + faster2, checked1 + checked2
    per_row = _per_row(before, after, pooled)
    scored_rows = per_row[per_row["skipped"] == ""].drop(columns="skipped")
    skipped = after[after["skipped_reason"] != ""].groupby("skipped_reason").size().reset_index(name="rows")
    model_after = _by(after, rows, "model")
    model_after = model_after[model_after["group"] == "throughput"]
    return TEMPLATE.format(
        headline=md_table(_headline(before, after, stack, pooled, regime)),
        fit_table=md_table(_fit_table(after, stack, regime)),
        knobs=md_table(_knobs({"1": stack["knobs"], "2": stack["swapped_knobs"]})),
        left_out=_left_out((stack["knobs"], stack["swapped_knobs"]), after),
        prefill_residuals=md_table(stack["prefill_residuals"]),
        by_source_held=md_table(_by_source_held(after, pooled, stack, rows)),
        faster=faster,
        checked=checked,
        **_stack_findings(after, stack, pooled, rows),
        h200=md_table(_h200_variants(before, after, transfer)),
        by_source=md_table(_by(after, rows, "source_id")),
        by_gpu=md_table(_by(after, rows, "gpu")),
        by_model=md_table(model_after),
        kernels=md_table(kernel_study),
        profile=md_table(_profile_table(profile_rows)),
        skipped=md_table(skipped),
        rows=md_table(scored_rows),
        scored=len(scored_rows),
        total=len(per_row),
        **_serving_fields(before, rows, load),
    )


def _serving_fields(before: pd.DataFrame, rows: pd.DataFrame, load: dict) -> dict:
    """The "Serving under load" section: `load` holds the serving table's rows, their results with the
    catalog presets and the seconds validating them took. Also the coverage of the published rows
    about a catalog model on a catalog GPU, from `before` (the presets)."""
    results, table = load["results"], load["rows"]
    catalog = [names.in_catalog(m, g) for m, g in zip(rows["model"], rows["gpu"], strict=True)]
    mine = before[np.array(catalog)]
    pub_predicted, pub_given = val.coverage(mine)
    predicted, given = val.coverage(results)
    scored = _with(results[results["skipped_reason"] == ""], table, ["gpu"])
    columns = ["row_id", "source_id", "case", "metric", "unit", "measured", "predicted", "error_pct", "flags"]
    long_context = scored[scored["source_id"].str.startswith("LC-")][columns]
    nvidia = scored["gpu"].map(lambda g: (hw := names.gpu_preset(g)) is not None and _nvidia(hw))
    no_lengths = results["skipped_reason"].str.contains("length of dataset")
    return {
        "serving_no_lengths": int(no_lengths.sum()),
        "serving_no_length_sources": ", ".join(sorted(set(results.loc[no_lengths, "source_id"]))) or "none",
        "published_coverage": f"{pub_predicted} of {pub_given} ({pub_predicted / pub_given:.0%})",
        "published_skipped": md_table(val.skip_reasons(mine)),
        "serving_coverage": f"{predicted} of {given} ({predicted / given:.0%})",
        "serving_seconds": f"{load['seconds']:.0f}",
        "serving_max_requests": f"{serving.MAX_REQUESTS:,}",
        "search_seconds": f"{serving.SEARCH_SECONDS:.0f}",
        "search_max": f"{serving.SEARCH_MAX_REQUESTS:,}",
        "serving_by_source": md_table(val.summarize_by_source(results)),
        "serving_long_context": md_table(long_context),
        "serving_non_nvidia": md_table(scored[~nvidia][columns]),
        "serving_skipped": md_table(val.skip_reasons(results)),
        "serving_rows": md_table(scored[~scored["source_id"].str.startswith("LC-") & nvidia][columns]),
    }


def _nvidia(preset: str) -> bool:
    return val.load_device(preset).vendor == "NVIDIA"


def _shape(r) -> str:
    if r["op"] == "gemm":
        return f"m={r['m']:.0f} n={r['n']:.0f} k={r['k']:.0f}"
    if r["op"] == "memcpy":
        return f"{r['bytes']:.3g} B"
    model = (
        cal.step_model(r["model"]).name
        if r["op"] in kernel_tables.STEP_OPS
        else f"h={r['heads']:.0f}/{r['kv_heads']:.0f}"
    )
    length = f"s={r['seq_len']:.0f}" if pd.notna(r["seq_len"]) else f"kv={r['kv_len']:.0f}"
    return f"{model} b={r['batch']:.0f} {length}"
