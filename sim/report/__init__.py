"""What a person reads: plotly `figures` built from result tables, and self-contained HTML reports of
a `run` and a `sweep`. Pure functions from results to figures and HTML strings; writes no files.
Imports anything below it (`sim.api`, engine tables, studies), never the CLI or the dashboard."""
