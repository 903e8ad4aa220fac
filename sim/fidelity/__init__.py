"""How close ctxsim is to measured hardware: `validate` predictions against published measurements,
`calibrate` kernel efficiencies, fit a serving stack's `overheads`, and `profile` a local GPU with
PyTorch (`profile` runs standalone and imports nothing of ctxsim). Calls `sim.api` and the layers
below it; never reports, the CLI or the dashboard."""
