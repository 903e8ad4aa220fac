"""Multi-turn sessions: conversations whose later turns carry the earlier ones.

A conversation is a growing scroll. Turn j's prompt is everything said so far (an optional system
prompt, the history the conversation opens with, then every earlier user message and answer) plus
the new user message, so turn j's prompt is a prefix of turn j+1's. With block ids (`workloads.blocks`)
a prefix cache can keep the scroll between turns and prefill only what is new.

Turns arrive open loop: the gap from one turn's arrival to the next is exponential with mean
`turn_gap_s`, standing for the time to answer plus the user's think time. (A next turn that waits
for the answer needs the engine; see `arrivals.ClosedLoop`.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from hardware.base import Frozen
from hardware.spec import Seconds
from workloads.lengths import Length, Tokens, sample_lengths


class Session(Frozen):
    """Each arrival of the class starts a conversation of `turns` turns (drawn per conversation).

    The class's `prompt_tokens` is then the length of each new user message and `output_tokens` each
    answer. `history_tokens` is context the conversation opens with (a character card and story so
    far, a pasted document), present from the first turn. A conversation ends before a turn whose
    prompt plus answer would pass `max_context_tokens` (its first turn is always kept)."""

    turns: Length
    turn_gap_s: Seconds = Field(gt=0)
    history_tokens: Length | None = None
    max_context_tokens: Tokens | None = None


@dataclass(frozen=True)
class Turns:
    """Requests of a set of conversations, unsorted; `conversation` indexes the starts given."""

    conversation: np.ndarray
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def expand(session: Session, start_s: np.ndarray, user_tokens: Length, answer_tokens: Length,
           system_tokens: int, rng: np.random.Generator) -> Turns:
    """Every turn of conversations starting at `start_s` (seconds). Draws, in order: turn counts,
    opening histories, user messages, answers, gaps between turns."""
    n = len(start_s)
    turns = sample_lengths(session.turns, rng, n)
    history = np.zeros(n, np.int64)
    if session.history_tokens is not None:
        history = sample_lengths(session.history_tokens, rng, n)
    conversation = np.repeat(np.arange(n), turns)
    user = sample_lengths(user_tokens, rng, len(conversation))
    answer = sample_lengths(answer_tokens, rng, len(conversation))
    gaps = rng.exponential(session.turn_gap_s, len(conversation))
    first = np.cumsum(turns) - turns
    gaps[first] = 0.0
    arrival = start_s[conversation] + _within(gaps, turns)
    said_before = _within(user + answer, turns) - (user + answer)
    prompt = system_tokens + history[conversation] + said_before + user
    keep = np.ones(len(conversation), bool)
    if session.max_context_tokens is not None:
        keep = prompt + answer <= session.max_context_tokens
        keep[first] = True
    return Turns(conversation[keep], arrival[keep], prompt[keep], answer[keep])


def _within(values: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """Running sums of `values` restarting at each group (groups are consecutive, of the given sizes)."""
    total = np.cumsum(values)
    before = np.concatenate([[0], total[np.cumsum(group_sizes)[:-1] - 1]]) if len(group_sizes) else total[:0]
    return total - np.repeat(before, group_sizes)
