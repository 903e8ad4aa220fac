"""Many runs answering one question: `sweep` over any scenario field with its resumable `store`,
the `planner` (cheapest cluster meeting SLOs), the `costcurve` (cost against context length per
hardware) and the `cachecurve` (prefix hit rate against cache size). Calls `sim.api` and the layers
below it; never reports, the CLI or the dashboard."""
