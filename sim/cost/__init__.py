"""What one step costs: the model's operators on a device group (`roofline`), the memory plan, the
analytic `estimate`, and (with kernels in `_kernels` beside their oracles in `_reference`) the numbers
the engine asks for on every step. Pure functions of hardware and model data: imports `hardware` and
`workloads` only, never the engine, studies, reports or the CLI."""
