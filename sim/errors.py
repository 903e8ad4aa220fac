"""How the CLI and the dashboard report an exception: the error boundary's one rule, in one place.

By the project's convention an input error is a `ValueError` whose message names the field
(`ScenarioError`, `TraceError`, `LimitError`, `OutputError`, ...), or an `OSError` naming the
path that could not be read or written: its message is shown as is. Any
other exception is a bug: the user gets one line naming it and the path of a file holding its
traceback (in the temporary folder), never the traceback itself.

`one_field_error` reduces a schema's refusal to the one field at fault, as the user wrote it, with
"did you mean" (difflib over the field names, or over the allowed values) for a misspelling.
"""

from __future__ import annotations

import difflib
import re
import tempfile
import traceback
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

INPUT_ERROR, INTERNAL_ERROR = 2, 1  # exit codes


def save_traceback(exc: BaseException) -> Path:
    """Write `exc`'s traceback to a new file in the temporary folder and return its path."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="ctxsim-error-", suffix=".txt", delete=False, encoding="utf-8"
    ) as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return Path(fh.name)


def explain(exc: Exception) -> tuple[int, str]:
    """(exit code, one-line message) for `exc`; an unexpected one has its traceback saved."""
    if isinstance(exc, ValueError | OSError):
        return INPUT_ERROR, str(exc)
    try:
        where = f"; traceback saved to {save_traceback(exc)}"
    except OSError:
        where = ""
    return INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}{where}"


# ---- one field, and what was probably meant -------------------------------------------------------
def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ "; did you mean 'rate_per_s'?" for what `word` most likely meant among `choices`: the choices
    it begins (all of them, 'h100' -> 'h100-nvl', 'h100-pcie' or 'h100-sxm'), else the closest by
    difflib's ratio (at least 0.6); "" when none is close."""
    word, names = str(word), [str(c) for c in choices]
    found = [c for c in names if c.startswith(word) and c != word] if word else []
    found = found or difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not found:
        return ""
    quoted = [repr(c) for c in found[:4]]
    either = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"; did you mean {either}?"


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation can hold (through Optional, unions, Annotated and
    the item types of lists, tuples and mappings)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _tagged(model: type[BaseModel], tag: str) -> bool:
    """Whether `tag` (a union member's name in an error location) names `model`: its class name, or
    a value its `kind` field may take."""
    kind = model.model_fields.get("kind")
    return model.__name__ == tag or (kind is not None and tag in typing.get_args(kind.annotation))


def fields_at(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The field names of the model(s) at an error location `loc` below `root` (for a union, of
    the member the location names, else of every member), in declaration order."""
    models = [root]
    for part in loc:
        inner = [
            m
            for model in models
            if part in model.model_fields
            for m in _models(model.model_fields[part].annotation)
        ]
        if inner:
            models = inner
        elif isinstance(part, str) and any(_tagged(m, part) for m in models):
            models = [m for m in models if _tagged(m, part)]
    return list(dict.fromkeys(name for m in models for name in m.model_fields))


def user_path(loc: Sequence[Any], data: Any) -> list[str]:
    """An error location as the user wrote it: the union tags pydantic adds ('poisson', 'uniform',
    'function-after[...]') and the keys a validator filled in (a shorthand `prompt_tokens` read as
    `classes.0.prompt_tokens`) are left out, by walking `data` along the location."""
    parts, node = [], data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, dict | list):
            if last:  # a field that is missing
                parts.append(str(part))
        elif not str(part).startswith("function-"):  # below a value a validator expanded (a preset)
            parts.append(str(part))
    return parts


def _quoted(text: str) -> list[str]:
    """The quoted words of pydantic's 'expected' lists: "'lru', 'lfu' or 'cost'" -> [lru, lfu, cost]."""
    return re.findall(r"'([^']*)'", text or "")


def one_field_error(exc: ValidationError, data: Any, root: type[BaseModel]) -> str:
    """The one problem to show for a mapping `data` that `root` refused, naming the field as the
    user wrote it, with 'did you mean' for a misspelt key or value.

    A misspelt key gives pydantic two or more errors (the unknown key, the field it meant missing,
    sometimes a list left empty for it); the unknown key is the cause, so it is the one shown, with
    the closest field of its model. Otherwise the first error is shown; a value outside a fixed set
    (a union's kind, a literal) gets the closest allowed value."""
    errors = exc.errors()
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    e = unknown[0] if unknown else errors[0]
    loc = [p for p in e["loc"] if not str(p).startswith("function-")]
    path = ".".join(user_path(loc, data)) or "scenario"
    if e["type"] == "extra_forbidden":
        key = str(loc[-1])
        fields = fields_at(root, loc[:-1])
        hint = did_you_mean(key, fields)
        return f"{path}: not a field here" + (hint or f"; the fields here are {', '.join(fields)}")
    if e["type"] == "union_tag_invalid":
        ctx = e.get("ctx", {})
        key = str(ctx.get("discriminator", "kind")).strip("'")
        expected = _quoted(str(ctx.get("expected_tags", "")))
        tag = ctx.get("tag")
        return f"{path}.{key}: {tag!r} is not one of {', '.join(expected)}{did_you_mean(tag, expected)}"
    if e["type"] in ("literal_error", "enum"):
        expected = _quoted(str(e.get("ctx", {}).get("expected", "")))
        return (
            f"{path}: {e['input']!r} is not one of {', '.join(expected)}{did_you_mean(e['input'], expected)}"
        )
    return f"{path}: {e['msg'].removeprefix('Value error, ')}"
