"""The serving engine on simpy: replicas with continuous batching, paged KV and prefix cache
(`kvcache`, `eviction`), the cluster's arrivals and `router`, what the `recorder` writes down and the
`metrics` tables built from it; numba kernels beside their oracles. It receives engine objects built
from a scenario by `sim.api`, and imports `sim.cost`, `hardware` and `workloads` only."""
