"""The serving engine on simpy: `simulate` runs replicas (the event loop in `replica`, the step
`scheduler` over each replica's `batch`) with paged KV and prefix cache (`kvcache`, `eviction`) behind
the `cluster`'s arrivals and `router`; the `recorder` writes down what happens and `metrics` builds
tables from it; `stream` runs the same replicas through a ring of request rows for runs too long to
hold, and `online` summarises them as they go; numba kernels sit beside their oracles. It receives
the frozen values of `config`, built from a scenario by `sim.api`, and imports `sim.cost`,
`hardware` and `workloads` only."""
