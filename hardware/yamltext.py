"""YAML text to plain data, with the limits a file from anyone needs.

`yaml.safe_load` builds no objects but trusts the document's shape: a few hundred bytes of nested
aliases (a "billion laughs") expand into billions of values once anything walks them, and a few
thousand nested brackets exhaust Python's recursion limit inside the composer. `load_yaml` counts
both on the composed node graph, before any Python object is built, and refuses in milliseconds.
It also reads `1e3` as the number 1000, as YAML 1.2 and JSON do (YAML 1.1 wants `1.0e3`), so an
exponent means the same in every field.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_DEPTH = 64
MAX_VALUES = 200_000

_EXPONENT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class YAMLLimitError(yaml.YAMLError):
    """A document nested too deep, expanding to too many values, or referring to itself."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_DEPTH levels of nesting."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789"))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(node: yaml.Node, limit: int = MAX_VALUES) -> int:
    """How many nodes the document has with every alias written out, counted once per distinct
    node (iteratively, so depth costs no recursion); raises past `limit` or on a self-reference."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    open_: set[int] = set()
    while stack:
        current, done = stack.pop()
        key = id(current)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(current))
            if sizes[key] > limit:
                raise YAMLLimitError(
                    f"aliases expand to more than {limit:,} values; write the values out instead"
                )
            continue
        if key in sizes:
            continue
        if key in open_:
            raise YAMLLimitError("an alias refers to the node that contains it")
        open_.add(key)
        stack.append((current, True))
        stack.extend((c, False) for c in _children(current) if id(c) not in sizes)
    return sizes[id(node)]


def load_yaml(text: str | bytes) -> Any:
    """One YAML document as plain Python data (like `yaml.safe_load`), refused with
    `YAMLLimitError` when nested deeper than MAX_DEPTH or expanding past MAX_VALUES values."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
