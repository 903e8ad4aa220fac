"""Collectives costed by where their members sit: inside a scale-up domain at its speed, across
domains over the scale-out network.

Picture a replica's devices numbered 0..N-1 and packed into scale-up domains of D devices in order
(an HGX board holds devices 0-7, the next board 8-15; a TPU slice fills its torus axis by axis). A
parallel group is `size` devices `stride` apart (a tensor-parallel group is contiguous, stride 1;
the i-th devices of successive pipeline stages are a stage's width apart), so `per_domain` of its
members share each domain and it spans `domains` of them.

A collective is a few `Leg`s, each the bytes one device sends per byte of the message over one
link, at that link's per-device bandwidth, plus latency hops; legs in a tuple run one after another:
- all-reduce (`all_reduce`): two-level, as NCCL runs it across nodes: a reduce-scatter inside each
  domain (`(k-1)/k` of the message), an all-reduce of each member's 1/k shard across the `n`
  domains over its own NIC (`2(n-1)/n · 1/k`), an all-gather inside the domain (`(k-1)/k`), paying
  at least the latency the same group would inside one domain. On a
  torus the domain part runs per axis, reduce-scatter along axis 0 then 1 (the shard shrinking by
  each axis's length) and all-gathers back: axis i moves `2(k_i-1)/k_i` of what reaches it, over its
  two links (one each way) when the group spans the axis and the ring closes (wraparound), over one
  when it does not (a line);
- all-to-all (`all_to_all`): every member sends 1/size of its message to every other; the part
  bound for the same domain and the part bound for others travel on different links at once, so
  the slower of the two sets the time (one `Leg`); on a torus, dimension-ordered routing moves the
  message along each axis in turn, an axis of k (k^2/4 byte-hops of every k bytes) at k/8 of the
  message per link-bandwidth with wraparound, k/4 on a line;
- point-to-point (`send`): one hop between neighbours, inside a domain or across.

A group that does not fit a domain pays for it visibly: its scale-out leg is its own operator in
the step's breakdown (`add_collective`), and a device without a scale-out network cannot hold such a
group at all (`ConfigError` naming it). Bandwidths here are datasheet peaks; the step's cost applies
the device's measured link and collective efficiencies to every leg (`add_collective`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from hardware.spec import Accelerator, Link
from sim.cost.legs import kernel_legs
from sim.cost.optable import OpBuilder
from sim.cost.parallelism import ConfigError


@dataclass(frozen=True)
class Leg:
    """One part of a collective: `bytes_per_byte` bytes each device sends for every byte of the
    message, at `bandwidth_bytes_per_s` (this device's share of the link, datasheet), over `hops`
    hops of `latency_s` each. `name` tells the breakdown which part it is ("" for the main one)."""

    link: Literal["scale_up", "scale_out"]
    bytes_per_byte: float
    bandwidth_bytes_per_s: float
    hops: int
    latency_s: float
    name: str = ""

    def seconds(self, message_bytes: float) -> float:
        return message_bytes * self.bytes_per_byte / self.bandwidth_bytes_per_s + self.hops * self.latency_s


def seconds(legs: tuple[Leg, ...], message_bytes: float) -> float:
    """A collective's time at datasheet bandwidth: its legs one after another."""
    return sum(leg.seconds(message_bytes) for leg in legs)


@dataclass(frozen=True)
class Span:
    """Where a group's members sit: `per_domain` in each of `domains` scale-up domains and, on a
    torus, how many lie along each axis of their domain and whether they close its ring."""

    per_domain: int
    domains: int
    axes: tuple[int, ...] = ()
    wrap: tuple[bool, ...] = ()


def span(link: Link | None, size: int, stride: int = 1) -> Span:
    """How a group of `size` devices `stride` apart falls on `link`'s scale-up domains (one domain
    when the link is unbounded; one member per domain when there is no scale-up link)."""
    if link is None:
        return Span(1, size)
    domain = link.domain
    if domain is None:
        return Span(size, 1)
    k = max(1, min(size, domain // stride)) if stride < domain else 1
    n = -(-size // k)
    if link.torus is None:
        return Span(k, n)
    axes, wrap = [], []
    skip, left = stride, k
    for length in link.torus:
        moved = math.gcd(skip, length)
        skip //= moved
        room = length // moved
        along = math.gcd(left, room)
        left //= along
        axes.append(along)
        wrap.append(along == length and along > 2)
    return Span(k, n, tuple(axes), tuple(wrap))


def _hops(link: Link, members: int) -> int:
    return link.allreduce_hops(members)


def _torus_link_bytes_per_s(link: Link) -> float:
    """One torus link's bandwidth each way: the device's bandwidth over its 2 x axes links."""
    return link.bandwidth_bytes_per_s / (2 * len(link.torus))


def _mesh_bytes_per_s(link: Link, members: int) -> float:
    """A mesh member's bandwidth to `members - 1` peers: one point-to-point link each."""
    return link.bandwidth_bytes_per_s * (members - 1) / (link.domain - 1)


def _scale_out(hw: Accelerator, where: str, sp: Span) -> Link:
    """The scale-out network a group spanning several domains crosses, or a `ConfigError` naming it."""
    if hw.scale_out is not None:
        return hw.scale_out
    if hw.scale_up is None:
        raise ConfigError(f"{where} needs hardware.scale_up or scale_out; {hw.name} has neither")
    raise ConfigError(
        f"{where} spans {sp.domains} scale-up domains of {hw.scale_up.domain} devices on {hw.name}, "
        "which has no scale_out network between them"
    )


def _out_bytes_per_s(out: Link) -> float:
    return out.bandwidth_bytes_per_s / out.oversubscription


def all_reduce(hw: Accelerator, size: int, stride: int = 1, where: str = "group") -> tuple[Leg, ...]:
    """The legs of an all-reduce over `size` devices `stride` apart (see the module docstring)."""
    if size <= 1:
        return ()
    up = hw.scale_up
    sp = span(up, size, stride)
    k, n = sp.per_domain, sp.domains
    legs: list[Leg] = []
    if k > 1:
        if up.torus is not None:
            w = _torus_link_bytes_per_s(up)
            shard = 1.0
            for i, (along, closed) in enumerate(zip(sp.axes, sp.wrap, strict=True)):
                if along > 1:
                    name = "" if not legs else f"axis{i}"
                    bw = w * (2 if closed else 1)
                    moved = 2 * (along - 1) / along * shard
                    legs.append(Leg("scale_up", moved, bw, 2 * (along - 1), up.latency_s, name))
                    shard /= along
        else:
            bw = _mesh_bytes_per_s(up, k) if up.topology == "mesh" else up.bandwidth_bytes_per_s
            legs.append(Leg("scale_up", 2 * (k - 1) / k, bw, _hops(up, k), up.latency_s))
    if n > 1:
        out = _scale_out(hw, where, sp)
        moved = 2 * (n - 1) / n / k
        hops = _hops(out, n)
        # never less latency than the same group would pay inside one domain: all its members still
        # synchronise, however few hops the two-level split takes
        inside = sum(leg.hops * leg.latency_s for leg in legs)
        flat = _hops(up, size) * up.latency_s if up is not None else 0.0
        latency = max(out.latency_s, (flat - inside) / hops)
        legs.append(Leg("scale_out", moved, _out_bytes_per_s(out), hops, latency, "scale_out"))
    return tuple(legs)


def all_to_all(hw: Accelerator, size: int, stride: int = 1, where: str = "group") -> tuple[Leg, ...]:
    """The bottleneck leg of an all-to-all over `size` devices `stride` apart, in which each device
    sends 1/size of its message to every member (itself included)."""
    if size <= 1:
        return ()
    up = hw.scale_up
    sp = span(up, size, stride)
    k, n = sp.per_domain, sp.domains
    legs: list[Leg] = []
    if k > 1:
        inside = k / size
        if up.torus is not None:
            w = _torus_link_bytes_per_s(up)
            axes = zip(sp.axes, sp.wrap, strict=True)
            per_w = sum(along / (8 if closed else 4) for along, closed in axes if along > 1)
            legs.append(Leg("scale_up", inside * per_w, w, 1, up.latency_s))
        else:
            bw = _mesh_bytes_per_s(up, k) if up.topology == "mesh" else up.bandwidth_bytes_per_s
            legs.append(Leg("scale_up", (k - 1) / size, bw, 1, up.latency_s))
    if n > 1:
        out = _scale_out(hw, where, sp)
        legs.append(Leg("scale_out", (size - k) / size, _out_bytes_per_s(out), 1, out.latency_s, "scale_out"))
    return (max(legs, key=lambda leg: leg.bytes_per_byte / leg.bandwidth_bytes_per_s),)


def send(hw: Accelerator, across: bool, where: str = "hop") -> Leg:
    """One point-to-point hop to a neighbour: inside a scale-up domain (the whole link on a switch,
    one peer link on a mesh, one torus link) or `across` domains over the scale-out network."""
    up = hw.scale_up
    if across or up is None:
        out = _scale_out(hw, where, Span(1, 2))
        return Leg("scale_out", 1.0, _out_bytes_per_s(out), 1, out.latency_s, "scale_out")
    if up.torus is not None:
        bw = _torus_link_bytes_per_s(up)
    elif up.topology == "mesh":
        bw = _mesh_bytes_per_s(up, 2)
    else:
        bw = up.bandwidth_bytes_per_s
    return Leg("scale_up", 1.0, bw, 1, up.latency_s)


def boundaries_across(link: Link | None, stages: int, width: int) -> int:
    """Of the `stages - 1` hops between consecutive pipeline stages of `width` devices each, how
    many cross from one scale-up domain into the next."""
    if link is None:
        return stages - 1
    domain = link.domain
    if domain is None:
        return 0
    return sum((s * width) // domain != ((s + 1) * width) // domain for s in range(stages - 1))


def add_collective(
    bld: OpBuilder,
    hw: Accelerator,
    name: str,
    count: float,
    legs: tuple[Leg, ...],
    nbytes: dict,
    shared: bool = False,
) -> None:
    """Append a collective's legs to a step's operators, one row each (named `name`, then
    `name.<leg>`): `nbytes` maps batch features to the message's bytes; each leg runs at the
    device's link rate (measured efficiencies included) scaled to the leg's bandwidth, and pays
    its hops' latency per call. `shared`: the attention ranks exchange their tokens in it
    (`OpTable.shared`)."""
    base_link = hw.link()
    base = kernel_legs(hw, "link")
    for leg in legs:
        rate = base.rate_b * leg.bandwidth_bytes_per_s / base_link.bandwidth_bytes_per_s
        legs_k = replace(base, rate_b=rate, overhead_s=leg.hops * leg.latency_s)
        row = f"{name}.{leg.name}" if leg.name else name
        scaled = {f: v * leg.bytes_per_byte for f, v in nbytes.items()}
        bld.add(row, count, legs_k, nbytes=scaled, link=True, shared=shared)
