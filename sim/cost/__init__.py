"""What one step costs: how a replica splits the model (`parallelism`; where its groups' traffic goes,
`collectives`, `exchange`; the pipeline's closed form, `pipeline`), the model's operators
(`ops`, one emitter per layer kind, stored in an `optable`) and the rates each kind of kernel gets
from a device (`legs`), evaluated as a per-operator `roofline`; the `memory` plan; the analytic
`estimate`; what devices cost in dollars and energy (`pricing`); and (with kernels in `_kernels`
beside their oracles in `_reference`) the numbers the engine asks for on every step. Pure functions
of hardware and model data: imports `hardware` and `workloads` only, never the engine, studies,
reports or the CLI."""
