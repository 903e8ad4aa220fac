import itertools

import numpy as np
import pytest

from workloads import blocks
from workloads.blocks import prefix_block_ids, reuse_fraction
from workloads.lengths import Fixed, Uniform
from workloads.sessions import Session, expand
from workloads.spec import Workload, generate

B = 512


def conversation_ids(turns, system=0):
    key = blocks.mix(blocks.CONVERSATION, turns.conversation)
    n = len(turns.prompt_tokens)
    system_key = blocks.mix(blocks.SYSTEM, np.zeros(n))
    values, offsets = prefix_block_ids(turns.prompt_tokens, B, np.full(n, system), system_key,
                                       turns.prompt_tokens, key, blocks.mix(blocks.OWN, np.arange(n)))
    return [values[offsets[i]:offsets[i + 1]] for i in range(n)]


def test_later_turns_carry_earlier_turns_as_a_shared_prefix():
    session = Session(turns=Fixed(tokens=6), turn_gap_s=30.0, history_tokens=Uniform(low=1000, high=5000))
    turns = expand(session, np.array([0.0, 10.0, 20.0]), Uniform(low=20, high=900), Uniform(low=50, high=700),
                   system_tokens=0, rng=np.random.default_rng(0))
    ids = conversation_ids(turns)
    for c in range(3):
        rows = np.flatnonzero(turns.conversation == c)
        assert len(rows) == 6
        assert np.all(np.diff(turns.arrival_s[rows]) > 0) and turns.arrival_s[rows[0]] == 10.0 * c
        for a, b in itertools.pairwise(rows):
            # the next prompt holds this prompt and its answer, then a new user message
            assert turns.prompt_tokens[b] > turns.prompt_tokens[a] + turns.output_tokens[a]
            full = turns.prompt_tokens[a] // B
            assert np.array_equal(ids[b][:full], ids[a][:full])
            if turns.prompt_tokens[a] % B:  # the partial last block is not reused
                assert ids[b][full] != ids[a][full]
    assert not set(ids[0]) & set(ids[6])  # different conversations share nothing


def test_max_context_ends_a_conversation():
    session = Session(turns=Fixed(tokens=50), turn_gap_s=1.0, max_context_tokens=3000)
    turns = expand(session, np.zeros(4), Fixed(tokens=100), Fixed(tokens=100), 0, np.random.default_rng(0))
    assert np.all(turns.prompt_tokens + turns.output_tokens <= 3000)
    assert len(turns.prompt_tokens) == 4 * 15  # prompts 100, 300, ..., 2900


def test_generated_sessions_fill_block_hashes_and_reuse_them():
    w = Workload.model_validate({
        "arrivals": {"kind": "poisson", "rate_per_s": 1},
        "block_tokens": 256,
        "classes": [{"name": "talk", "system_prompt_tokens": 600,
                     "prompt_tokens": {"kind": "fixed", "tokens": 300},
                     "output_tokens": {"kind": "fixed", "tokens": 200},
                     "session": {"turns": {"kind": "fixed", "tokens": 4}, "turn_gap_s": 5}}]})
    reqs = generate(w, np.random.default_rng(0), requests=400)
    assert reqs.block_tokens == 256 and len(reqs.block_hashes) == 400
    for prompt, ids in zip(reqs.prompt_tokens, reqs.block_hashes, strict=True):
        assert len(ids) == -(-prompt // 256) and ids.dtype == np.int64 and np.all(ids >= 0)
    # the system prompt's two full blocks are the same for every request
    assert len({tuple(ids[:2]) for ids in reqs.block_hashes}) == 1
    assert set(reqs.prompt_tokens) <= {900, 1400, 1900, 2400}
    # independent count of blocks seen before, against the library's figure
    seen, hits, total = set(), 0, 0
    for ids in reqs.block_hashes:
        for h in ids.tolist():
            hits += h in seen
            total += 1
            seen.add(h)
    assert reuse_fraction(np.concatenate(reqs.block_hashes)) == pytest.approx(hits / total)
    assert hits / total > 0.5
