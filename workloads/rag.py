"""Questions about documents, served with the whole document in the prompt or with retrieval (RAG).

Asking about a 300K-token contract, a service can put the whole contract in the prompt (long
context: a large prefill, but a prefix cache can keep the document for the next question about it),
or retrieve `chunks` pieces of `chunk_tokens` tokens and send only those with the question (RAG: a
short prefill, plus the retriever's time). Two classes with the same documents and questions, one per
way of serving, let one run compare their cost and latency per class.

The retriever's latency is an arrival delay: a RAG request reaches the model `retrieval_s` after the
user asked, and `Requests.meta["retrieval_s"]` holds that delay per request (0 for other requests),
so the user-perceived time to first token is the engine's TTFT plus that delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from hardware.base import Frozen
from hardware.spec import Seconds
from workloads.lengths import Length, Tokens, sample_lengths


class FullDocument(Frozen):
    """The whole document goes into the prompt, before the question."""

    kind: Literal["full"] = "full"


class Retrieval(Frozen):
    """A retriever picks `chunks` chunks of `chunk_tokens` tokens (no more than the document holds)
    in `retrieval_s` seconds; they go into the prompt before the question."""

    kind: Literal["rag"] = "rag"
    chunks: int = Field(ge=1)
    chunk_tokens: Tokens
    retrieval_s: Seconds = Field(default=0.0, ge=0)


class DocumentQA(Frozen):
    """Each arrival of the class is a question about a document of `document_tokens` tokens. With
    `corpus_documents`, questions pick uniformly among that many documents (drawn once), so
    documents recur; without it each question brings its own. The class's `prompt_tokens` is then
    the question's length and `output_tokens` the answer's."""

    document_tokens: Length
    corpus_documents: int | None = Field(default=None, ge=1)
    serve: Annotated[FullDocument | Retrieval, Field(discriminator="kind")] = FullDocument()


@dataclass(frozen=True)
class Questions:
    """One request per question, in the order given. The first `shared_tokens` of each prompt are
    the same for every question about `document` (the system prompt, plus the document when served
    in full); `delay_s` is the retrieval time."""

    document: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    shared_tokens: np.ndarray
    delay_s: np.ndarray


def expand(qa: DocumentQA, n: int, question_tokens: Length, answer_tokens: Length, system_tokens: int,
           rng: np.random.Generator) -> Questions:
    """`n` questions. Draws, in order: document lengths, which document each question is about (with a
    corpus), question lengths, answer lengths."""
    documents = sample_lengths(qa.document_tokens, rng, qa.corpus_documents or n)
    which = rng.integers(0, len(documents), n) if qa.corpus_documents else np.arange(n)
    question = sample_lengths(question_tokens, rng, n)
    answer = sample_lengths(answer_tokens, rng, n)
    if isinstance(qa.serve, Retrieval):
        context = np.minimum(documents[which], qa.serve.chunks * qa.serve.chunk_tokens)
        shared = np.full(n, system_tokens, np.int64)
        delay = np.full(n, qa.serve.retrieval_s)
    else:
        context = documents[which]
        shared = system_tokens + context
        delay = np.zeros(n)
    return Questions(which, system_tokens + context + question, answer, shared, delay)
