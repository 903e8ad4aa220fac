"""Measure the local accelerator with PyTorch: the kernels a model runs and whole decoder steps.

A profile is a table of timed kernels, one row each, in the columns `sim.fidelity.calibrate` reads:
- `gemm` (m tokens x k -> n, the model's projection shapes at several token counts, bf16 and fp8);
- `attention_prefill` (causal SDPA over `seq_len` new tokens) and `attention_decode` (one query token
  against `kv_len` cached tokens), with the model's heads, KV heads and head size;
- `memcpy` (device-to-device copy; `bytes` counts bytes read plus bytes written);
- `allreduce` (NCCL over every local GPU, `bytes` the message size), when there are several GPUs;
- `prefill_step` / `decode_step`: a decoder stack built from the model's shapes with random weights
  (embedding, `layers` x [RMSNorm, QKV, SDPA, O, RMSNorm, SwiGLU], final norm, LM head on the last
  position). Their `model` column holds the shapes as JSON so a prediction can rebuild the same
  (possibly scaled) model.
Kernels are timed as CUDA-graph replays on a GPU (see `_timer`).

Nothing is downloaded. This module imports only the standard library at import time and PyTorch
inside `measure`, so `python sim/fidelity/profile.py --shapes-json ...` runs on a machine that has PyTorch
but not the rest of ctxsim; `ctxsim profile` is the usual way in.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workloads.model import ModelArch

COLUMNS = (
    "device",
    "op",
    "dtype",
    "m",
    "n",
    "k",
    "batch",
    "seq_len",
    "kv_len",
    "heads",
    "kv_heads",
    "head_dim",
    "bytes",
    "gpus",
    "model",
    "time_s",
    "source",
)
MIN_TIMED_S = 0.02  # each repeat runs a kernel back to back for at least this long


@dataclass(frozen=True)
class Shapes:
    """The plain numbers of a decoder (dense or MoE, GQA attention) that the profiler builds."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    experts: int = 0
    active: int = 0


@dataclass(frozen=True)
class Plan:
    """What to measure: token counts for GEMMs, (batch, tokens) pairs for attention and steps, copy
    sizes in bytes, repeats per measurement (the median is kept) and decoder layers for steps."""

    gemm_tokens: tuple[int, ...]
    fp8_tokens: tuple[int, ...]
    prefill: tuple[tuple[int, int], ...]
    decode: tuple[tuple[int, int], ...]
    copy_bytes: tuple[int, ...]
    allreduce_bytes: tuple[int, ...]
    step_prefill: tuple[tuple[int, int], ...]
    step_decode: tuple[tuple[int, int], ...]
    step_layers: int
    repeats: int


FULL = Plan(
    gemm_tokens=(1, 8, 32, 128, 512, 2048, 8192, 16384),
    fp8_tokens=(16, 64, 256, 1024, 4096, 16384),
    prefill=((1, 512), (1, 2048), (1, 8192), (1, 32768), (1, 65536), (4, 2048), (16, 512), (8, 4096)),
    decode=(
        (1, 1024),
        (1, 16384),
        (1, 131072),
        (8, 4096),
        (8, 65536),
        (32, 4096),
        (32, 32768),
        (128, 1024),
        (128, 8192),
        (256, 4096),
    ),
    copy_bytes=tuple(2**e for e in range(12, 33, 2)),
    allreduce_bytes=tuple(2**e for e in range(10, 31, 2)),
    step_prefill=((1, 512), (1, 2048), (1, 8192), (4, 2048), (16, 512)),
    step_decode=((1, 1024), (8, 1024), (32, 2048), (64, 4096), (128, 4096)),
    step_layers=8,
    repeats=5,
)
TINY = Plan(
    gemm_tokens=(1, 8, 64),
    fp8_tokens=(16, 64),
    prefill=((1, 32), (2, 64)),
    decode=((1, 64), (4, 32)),
    copy_bytes=(2**12, 2**16),
    allreduce_bytes=(2**10, 2**14),
    step_prefill=((1, 32), (2, 16)),
    step_decode=((1, 32), (4, 16)),
    step_layers=2,
    repeats=2,
)


def tiny(shapes: Shapes) -> Shapes:
    """A shrunken copy with the same head structure ratios, for a CPU run of the whole path."""
    group = max(shapes.heads // max(shapes.kv_heads, 1), 1)
    kv = 2
    return replace(
        shapes,
        name=f"{shapes.name}-tiny",
        hidden=64,
        heads=kv * min(group, 4),
        kv_heads=kv,
        head_dim=16,
        ffn=128,
        vocab=256,
        layers=min(shapes.layers, 2),
        experts=min(shapes.experts, 4),
        active=min(shapes.active, 2),
    )


def model_shapes(arch: ModelArch) -> Shapes:
    """The decoder shapes of a ctxsim model (an MoE's FFN is one expert's); ValueError for models the
    profiler cannot build (MLA, SSM or windowed attention)."""
    if arch.mla is not None or arch.ssm is not None or arch.window is not None:
        raise ValueError(
            f"model {arch.name}: profiling builds GQA attention decoders; MLA, SSM and windowed models are "
            "not supported"
        )
    moe = arch.moe
    return Shapes(
        name=arch.name,
        layers=arch.num_layers,
        hidden=arch.hidden_size,
        heads=arch.num_heads,
        kv_heads=arch.num_kv_heads,
        head_dim=arch.head_dim,
        ffn=moe.expert_ffn if moe else arch.intermediate_size,
        vocab=arch.vocab_size,
        experts=moe.experts if moe else 0,
        active=moe.active if moe else 0,
    )


# ---- timing -------------------------------------------------------------------------------------------
def _timer(torch, device: str) -> Callable[[Callable[[], object], int], tuple[float, str]]:
    """A function timing `fn`: (seconds per call, median over `repeats`; how it was timed). Each
    repeat runs `fn` back to back long enough to hide the timer's resolution. On a GPU the calls are
    captured into one CUDA graph and replayed between two events, so small kernels are timed on the
    device rather than by how fast Python launches them (serving engines replay graphs too); where
    capture fails the calls are launched eagerly. On a CPU the wall clock times eager calls."""

    def eager(fn, iters):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / iters
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        return (time.perf_counter() - t0) / iters

    def graphed(fn, iters, repeats):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(iters):
                fn()
        graph.replay()
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / iters)
        del graph
        return statistics.median(times)

    def timed(fn, repeats):
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        first = eager(fn, 1)
        iters = max(1, min(1000, int(MIN_TIMED_S / max(first, 1e-7))))
        if device == "cuda":
            try:
                return graphed(fn, iters, repeats), "cuda graph"
            except RuntimeError as exc:
                print(f"profile: CUDA graph capture failed, timing eagerly: {exc}", file=sys.stderr)
        return statistics.median(eager(fn, iters) for _ in range(repeats)), "eager"

    return timed


def _sdpa(torch, q, k, v, causal: bool):
    """Scaled dot-product attention with grouped KV heads (q: b x H x n x d, k/v: b x Hkv x L x d)."""
    f = torch.nn.functional.scaled_dot_product_attention
    try:
        return f(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:  # PyTorch before 2.5 has no enable_gqa: expand the KV heads
        rep = q.shape[1] // k.shape[1]
        return f(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=causal)


# ---- the measurements -----------------------------------------------------------------------------------
def _gemm_shapes(s: Shapes) -> list[tuple[str, int, int]]:
    ffn = s.ffn
    return [
        ("qkv", (s.heads + 2 * s.kv_heads) * s.head_dim, s.hidden),
        ("o", s.hidden, s.heads * s.head_dim),
        ("gate_up", 2 * ffn, s.hidden),
        ("down", s.hidden, ffn),
        ("lm_head", s.vocab, s.hidden),
    ]


def _gemms(torch, s: Shapes, plan: Plan, device: str, timed, emit) -> None:
    bf16 = torch.bfloat16
    for name, n, k in _gemm_shapes(s):
        w = torch.randn(n, k, device=device, dtype=bf16)
        for m in plan.gemm_tokens:
            x = torch.randn(m, k, device=device, dtype=bf16)
            t, how = timed(lambda x=x, w=w: torch.nn.functional.linear(x, w), plan.repeats)
            emit(op="gemm", dtype="bf16", m=m, n=n, k=k, time_s=t, source=f"torch linear ({name}), {how}")
    if device != "cuda" or torch.cuda.get_device_capability() < (8, 9):
        return
    f8 = torch.float8_e4m3fn
    one = torch.ones((), device=device, dtype=torch.float32)
    for name, n, k in _gemm_shapes(s):
        w = torch.randn(n, k, device=device, dtype=bf16).to(f8)
        for m in plan.fp8_tokens:
            x = torch.randn(m, k, device=device, dtype=bf16).to(f8)
            try:
                t, how = timed(
                    lambda x=x, w=w: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one, out_dtype=bf16),
                    plan.repeats,
                )
            except RuntimeError as exc:  # this PyTorch build has no fp8 GEMM for the device
                print(f"profile: fp8 GEMMs skipped: {exc}", file=sys.stderr)
                return
            emit(op="gemm", dtype="fp8", m=m, n=n, k=k, time_s=t, source=f"torch _scaled_mm ({name}), {how}")


def _attention(torch, s: Shapes, plan: Plan, device: str, timed, emit) -> None:
    bf16, hd = torch.bfloat16, s.head_dim
    shape = {"heads": s.heads, "kv_heads": s.kv_heads, "head_dim": hd, "dtype": "bf16"}
    for batch, n in plan.prefill:
        q = torch.randn(batch, s.heads, n, hd, device=device, dtype=bf16)
        k, v = (torch.randn(batch, s.kv_heads, n, hd, device=device, dtype=bf16) for _ in range(2))
        t, how = timed(lambda q=q, k=k, v=v: _sdpa(torch, q, k, v, True), plan.repeats)
        emit(
            op="attention_prefill",
            batch=batch,
            seq_len=n,
            time_s=t,
            source=f"torch SDPA causal, {how}",
            **shape,
        )
        del q, k, v
    for batch, kv_len in plan.decode:
        q = torch.randn(batch, s.heads, 1, hd, device=device, dtype=bf16)
        k, v = (torch.randn(batch, s.kv_heads, kv_len, hd, device=device, dtype=bf16) for _ in range(2))
        t, how = timed(lambda q=q, k=k, v=v: _sdpa(torch, q, k, v, False), plan.repeats)
        emit(
            op="attention_decode", batch=batch, kv_len=kv_len, time_s=t, source=f"torch SDPA, {how}", **shape
        )
        del q, k, v


def _copies(torch, plan: Plan, device: str, timed, emit) -> None:
    for size in plan.copy_bytes:
        src = torch.empty(size, device=device, dtype=torch.uint8)
        dst = torch.empty_like(src)
        t, how = timed(lambda src=src, dst=dst: dst.copy_(src), plan.repeats)
        emit(
            op="memcpy", dtype="uint8", bytes=2 * size, time_s=t, source=f"tensor copy_ (read + write), {how}"
        )
        del src, dst


class Decoder:
    """A decoder stack of `shapes` with random bf16 weights and a static KV cache of `cache_len`
    tokens for `batch` sequences; `prefill(ids)` and `decode(ids, pos)` return last-position logits."""

    def __init__(self, torch, s: Shapes, layers: int, device: str, batch: int, cache_len: int):
        self.torch, self.s = torch, s
        bf16 = torch.bfloat16

        def w(*shape):
            return torch.randn(*shape, device=device, dtype=bf16) * shape[-1] ** -0.5

        q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
        self.embed = w(s.vocab, s.hidden)
        self.lm_head = w(s.vocab, s.hidden)
        self.layers = [
            {
                "qkv": w(q + 2 * kv, s.hidden),
                "o": w(s.hidden, q),
                "gate_up": w(2 * s.ffn, s.hidden),
                "down": w(s.hidden, s.ffn),
                "n1": torch.ones(s.hidden, device=device, dtype=bf16),
                "n2": torch.ones(s.hidden, device=device, dtype=bf16),
            }
            for _ in range(layers)
        ]
        self.norm = torch.ones(s.hidden, device=device, dtype=bf16)
        self.cache = [
            (
                torch.zeros(batch, s.kv_heads, cache_len, s.head_dim, device=device, dtype=bf16),
                torch.zeros(batch, s.kv_heads, cache_len, s.head_dim, device=device, dtype=bf16),
            )
            for _ in range(layers)
        ]

    def _rms(self, x, weight):
        t = self.torch
        return (x.float() * t.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * weight

    def _layer(self, x, p, cache, pos: int):
        t, s = self.torch, self.s
        b, n, _ = x.shape
        q_w, kv_w = s.heads * s.head_dim, s.kv_heads * s.head_dim
        qkv = t.nn.functional.linear(self._rms(x, p["n1"]), p["qkv"])
        q = qkv[..., :q_w].view(b, n, s.heads, s.head_dim).transpose(1, 2)
        k = qkv[..., q_w : q_w + kv_w].view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
        v = qkv[..., q_w + kv_w :].view(b, n, s.kv_heads, s.head_dim).transpose(1, 2)
        cache[0][:, :, pos : pos + n] = k
        cache[1][:, :, pos : pos + n] = v
        if pos == 0:
            att = _sdpa(t, q, k, v, True)
        else:
            att = _sdpa(t, q, cache[0][:, :, : pos + n], cache[1][:, :, : pos + n], False)
        x = x + t.nn.functional.linear(att.transpose(1, 2).reshape(b, n, q_w), p["o"])
        gate, up = t.nn.functional.linear(self._rms(x, p["n2"]), p["gate_up"]).chunk(2, dim=-1)
        return x + t.nn.functional.linear(t.nn.functional.silu(gate) * up, p["down"])

    def forward(self, ids, pos: int):
        x = self.embed[ids]
        for p, cache in zip(self.layers, self.cache, strict=True):
            x = self._layer(x, p, cache, pos)
        return self.torch.nn.functional.linear(self._rms(x[:, -1], self.norm), self.lm_head)


def _steps(torch, s: Shapes, plan: Plan, device: str, timed, emit) -> None:
    if s.experts:
        print(
            f"profile: {s.name} is a mixture of experts; decoder steps are measured for dense models only",
            file=sys.stderr,
        )
        return
    layers = min(plan.step_layers, s.layers)
    model = json.dumps(asdict(replace(s, layers=layers)), separators=(",", ":"))
    shape = {
        "heads": s.heads,
        "kv_heads": s.kv_heads,
        "head_dim": s.head_dim,
        "dtype": "bf16",
        "model": model,
    }
    with torch.inference_mode():
        for batch, n in plan.step_prefill:
            dec = Decoder(torch, s, layers, device, batch, n)
            ids = torch.randint(0, s.vocab, (batch, n), device=device)
            t, how = timed(lambda dec=dec, ids=ids: dec.forward(ids, 0), plan.repeats)
            emit(op="prefill_step", batch=batch, seq_len=n, time_s=t, source=how, **shape)
            del dec
        for batch, kv_len in plan.step_decode:
            dec = Decoder(torch, s, layers, device, batch, kv_len + 1)
            ids = torch.randint(0, s.vocab, (batch, 1), device=device)
            t, how = timed(lambda dec=dec, ids=ids, pos=kv_len: dec.forward(ids, pos), plan.repeats)
            emit(op="decode_step", batch=batch, kv_len=kv_len, time_s=t, source=how, **shape)
            del dec


def _allreduce_worker(rank: int, world: int, sizes: tuple[int, ...], repeats: int, port: int, queue) -> None:
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    timed = _timer(torch, "cuda")
    for size in sizes:
        x = torch.empty(size // 2, device="cuda", dtype=torch.bfloat16)
        t, _ = timed(lambda x=x: dist.all_reduce(x), repeats)
        if rank == 0:
            queue.put((size, t))
    dist.destroy_process_group()


def _allreduce(torch, plan: Plan, emit) -> None:
    world = torch.cuda.device_count()
    mp = torch.multiprocessing.get_context("spawn")
    queue = mp.SimpleQueue()
    args = (world, plan.allreduce_bytes, plan.repeats, 29511, queue)
    torch.multiprocessing.spawn(_allreduce_worker, args=args, nprocs=world)
    for size in plan.allreduce_bytes:
        _, t = queue.get()
        emit(op="allreduce", dtype="bf16", bytes=size, gpus=world, time_s=t, source="NCCL all_reduce")


def measure(shapes: Shapes, plan: Plan, device: str, write: Callable[[dict], None]) -> None:
    """Run every measurement of `plan` for `shapes` on `device` ("cuda" or "cpu"), handing each row
    (a dict over COLUMNS) to `write` as soon as it is timed, so a run cut short keeps what it measured."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: PyTorch sees no CUDA device; use --device cpu")
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    torch.manual_seed(0)
    timed = _timer(torch, device)

    def emit(**fields):
        write({c: fields.get(c, "") for c in COLUMNS} | {"device": name})

    with torch.inference_mode():
        _gemms(torch, shapes, plan, device, timed, emit)
        _attention(torch, shapes, plan, device, timed, emit)
        _copies(torch, plan, device, timed, emit)
    if device == "cuda" and torch.cuda.device_count() > 1:
        _allreduce(torch, plan, emit)
    _steps(torch, shapes, plan, device, timed, emit)


def main(argv: list[str] | None = None) -> None:
    """Standalone entry for machines with PyTorch but without ctxsim's other dependencies."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes-json", required=True, help="a Shapes object as JSON")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args(argv)
    shapes = Shapes(**json.loads(args.shapes_json))
    plan = TINY if args.tiny else FULL
    with open(args.output, "w", newline="") as fh:
        out = csv.DictWriter(fh, COLUMNS)
        out.writeheader()

        def write(row):
            out.writerow(row)
            fh.flush()

        measure(tiny(shapes) if args.tiny else shapes, plan, args.device, write)


if __name__ == "__main__":
    main()
