import numpy as np
import pytest
from pydantic import ValidationError

from workloads.describe import summarize_requests
from workloads.spec import Workload, generate

DOCS = {"kind": "uniform", "low": 100_000, "high": 300_000}


def rag_vs_full(corpus=None):
    serve_rag = {"kind": "rag", "chunks": 8, "chunk_tokens": 512, "retrieval_s": 0.25}
    doc = {"document_tokens": DOCS, "corpus_documents": corpus}
    return Workload.model_validate({
        "arrivals": {"kind": "poisson", "rate_per_s": 1},
        "classes": [
            {"name": "long-context", "prompt_tokens": {"kind": "uniform", "low": 20, "high": 200},
             "output_tokens": {"kind": "fixed", "tokens": 300}, "document": doc},
            {"name": "rag", "prompt_tokens": {"kind": "uniform", "low": 20, "high": 200},
             "output_tokens": {"kind": "fixed", "tokens": 300}, "document": {**doc, "serve": serve_rag}}]})


def test_one_run_serves_documents_in_full_and_by_retrieval():
    reqs = generate(rag_vs_full(), np.random.default_rng(0), requests=2000)
    full, rag = reqs.cls == 0, reqs.cls == 1
    assert reqs.class_names == ("long-context", "rag")
    assert reqs.prompt_tokens[full].min() >= 100_020 and reqs.prompt_tokens[full].max() <= 300_200
    assert reqs.prompt_tokens[rag].min() >= 8 * 512 + 20 and reqs.prompt_tokens[rag].max() <= 8 * 512 + 200
    delay = reqs.meta["retrieval_s"]
    assert np.all(delay[rag] == 0.25) and np.all(delay[full] == 0.0)
    assert np.all(np.diff(reqs.arrival_s) >= 0)


def test_a_shared_corpus_lets_full_documents_reuse_their_blocks():
    alone = summarize_requests(generate(rag_vs_full(), np.random.default_rng(0), requests=500))
    corpus = summarize_requests(generate(rag_vs_full(corpus=5), np.random.default_rng(0), requests=500))
    assert alone["block_reuse_fraction"] < 0.01
    assert corpus["block_reuse_fraction"] > 0.9


def test_bad_document_fields_are_named():
    five = {"kind": "fixed", "tokens": 5}
    bad_rag = {"document_tokens": DOCS, "serve": {"kind": "rag", "chunks": 0, "chunk_tokens": 5}}
    with pytest.raises(ValidationError, match="chunks"):
        Workload.model_validate({"prompt_tokens": five, "output_tokens": five, "document": bad_rag})
    with pytest.raises(ValidationError, match="session or document, not both"):
        Workload.model_validate({"prompt_tokens": five, "output_tokens": five,
                                 "document": {"document_tokens": DOCS},
                                 "session": {"turns": five, "turn_gap_s": 1}})
