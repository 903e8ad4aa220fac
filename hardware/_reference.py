"""Plain-Python oracle for hardware/_kernels.py: the same roofline, written to be read, not to be fast."""


def op_time(flops, nbytes, flops_per_s, bytes_per_s, overhead_s):
    compute_s = flops / flops_per_s
    memory_s = nbytes / bytes_per_s
    return max(compute_s, memory_s) + overhead_s, compute_s, memory_s


def roofline(flops, nbytes, flops_per_s, bytes_per_s, overhead_s):
    """Return (total time, per-operator times, per-operator compute-bound flags)."""
    times, bound = [], []
    for f, b, rf, rb, o in zip(flops, nbytes, flops_per_s, bytes_per_s, overhead_s, strict=True):
        t, c, m = op_time(f, b, rf, rb, o)
        times.append(t)
        bound.append(c >= m)
    return sum(times), times, bound
