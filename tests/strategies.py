"""Hypothesis strategies shared by the property tests."""

from hypothesis import strategies as st

batches = st.lists(st.tuples(st.integers(1, 4096), st.integers(0, 200_000)), min_size=1, max_size=48)
