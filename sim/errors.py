"""How the CLI and the dashboard report an exception: the error boundary's one rule, in one place.

By the project's convention an input error is a `ValueError` whose message names the field
(`ScenarioError`, `TraceError`, `LimitError`, `OutputError`, ...), or an `OSError` naming the
path that could not be read or written: its message is shown as is. Any
other exception is a bug: the user gets one line naming it and the path of a file holding its
traceback (in the temporary folder), never the traceback itself.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path

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
