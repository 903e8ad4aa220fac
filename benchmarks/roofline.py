"""Roofline evaluations per second: the numba kernel vs the plain-Python reference, one core.

    python benchmarks/roofline.py

Prints operator evaluations per second for (1) the array roofline kernel over 1M operators,
(2) the per-step kernel over a real operator table (Llama-3.1-8B on H100, 64-sequence decode batch),
(3) the decode-span kernel (event skipping), each against its Python reference, with the ratio.
"""

import time

import numpy as np

from hardware import _kernels as hk
from hardware import _reference as hr
from hardware import load_hardware
from sim.cost import _kernels as K
from sim.cost import _reference as R
from sim.cost.ops import build_ops
from sim.cost.parallelism import Parallelism
from workloads import load_model


def rate(fn, work, min_s=0.5):
    fn()  # compile / warm
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    return work * n / (time.perf_counter() - t0)


def main():
    rng = np.random.default_rng(0)
    n_ops = 1_000_000
    cols = [
        rng.uniform(0, 1e12, n_ops),
        rng.uniform(0, 1e9, n_ops),
        np.full(n_ops, 8e14),
        np.full(n_ops, 3e12),
        np.zeros(n_ops),
    ]
    times, bound = hk.empty_like(cols[0])
    lists = [c[:20_000].tolist() for c in cols]
    kern = rate(lambda: hk.roofline(*cols, times, bound), n_ops)
    ref = rate(lambda: hr.roofline(*lists), 20_000)
    print(
        f"roofline over arrays     numba {kern / 1e6:10.1f} M ops/s   python {ref / 1e6:8.2f} M ops/s   "
        f"ratio {kern / ref:7.0f}x"
    )

    table = build_ops(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), Parallelism())
    args = table.kernel_args
    n_tab = table.ops.shape[0]
    new, ctx = np.ones(64, np.int64), rng.integers(1000, 9000, 64)
    kern = rate(lambda: K.step_time(new, ctx, 64.0, *args), n_tab)
    ref = rate(lambda: R.step_time(new.tolist(), ctx.tolist(), 64, *args), n_tab)
    print(
        f"step (batch features)    numba {kern / 1e6:10.1f} M ops/s   python {ref / 1e6:8.2f} M ops/s   "
        f"ratio {kern / ref:7.0f}x"
    )

    acc = np.zeros(K.N_ACC)
    steps = 1000
    kern = rate(lambda: K.decode_span(ctx, *args, 0.0, np.inf, steps, acc), steps * n_tab)
    ref = rate(lambda: R.decode_span(ctx.tolist(), *args, 0.0, np.inf, 50), 50 * n_tab)
    print(
        f"decode span (skipping)   numba {kern / 1e6:10.1f} M ops/s   python {ref / 1e6:8.2f} M ops/s   "
        f"ratio {kern / ref:7.0f}x   ({kern / n_tab / 1e6:.2f} M decode steps/s)"
    )


if __name__ == "__main__":
    main()
