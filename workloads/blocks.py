"""Prefix blocks and their ids, the currency of a prefix cache.

A prompt is cut into blocks of `block_tokens` tokens. A block's id stands for its content and
everything before it (as vLLM's prefix caching and Mooncake's `hash_ids` do), so two prompts share
block k exactly when they agree on their first (k+1)·block_tokens tokens, and a request whose
leading blocks are cached can skip their prefill.

A generated prompt is described by its structure: its first `system_tokens` are the same for every
request of its class (a system prompt), its first `shared_tokens` (system prompt included) are the
same for every request with the same `shared_key` (a conversation's history, a document), and the
rest is its own. A block that ends inside the system prompt gets its id from (class, k), one that ends
inside the shared part from (shared_key, k), any other (the partial last block included) from the
request itself. Ids are 63-bit splitmix64 mixes of those keys: deterministic, non-negative int64.
"""

from __future__ import annotations

import numpy as np

SYSTEM, CONVERSATION, DOCUMENT, OWN, TRACE = 1, 2, 3, 4, 5

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = z + _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def mix(*parts: np.ndarray | int) -> np.ndarray:
    """A 63-bit id (int64 >= 0) from integer arrays (broadcast together), mixed in order."""
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(p, np.int64)) for p in parts))
    h = np.zeros(arrays[0].shape, np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            h = _splitmix(h ^ a.view(np.uint64))
    return (h >> np.uint64(1)).astype(np.int64)


def prefix_block_ids(prompt_tokens: np.ndarray, block_tokens: int, system_tokens: np.ndarray,
                     system_key: np.ndarray, shared_tokens: np.ndarray, shared_key: np.ndarray,
                     own_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block ids of each prompt, flat: request i holds `values[offsets[i]:offsets[i+1]]`,
    ceil(prompt_tokens[i] / block_tokens) of them. All arguments but `block_tokens` are per request."""
    counts = -(-np.asarray(prompt_tokens, np.int64) // block_tokens)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    row = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(offsets[-1]) - offsets[row]
    end = (k + 1) * block_tokens
    key = np.where(end <= system_tokens[row], system_key[row],
                   np.where(end <= shared_tokens[row], shared_key[row], own_key[row]))
    return mix(key, k), offsets


def reuse_fraction(block_ids: np.ndarray | None) -> float | None:
    """With an unbounded cache, the fraction of blocks (in arrival order) already seen earlier:
    1 - distinct / total. None without block ids."""
    if block_ids is None or len(block_ids) == 0:
        return None
    return 1.0 - len(np.unique(block_ids)) / len(block_ids)
