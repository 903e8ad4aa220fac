"""Where ctxsim writes, and the rules that keep a user's files safe.

Every output is written whole into a hidden sibling first and moved into place only when complete,
so a failed or interrupted command leaves nothing half-written. Nothing that already exists is
replaced unless the user asked for it (`--overwrite`), and then a folder is replaced only if ctxsim
wrote it: each output folder carries a marker file, and a folder without one is never touched.
Targets are checked (`check_folder`, `check_file`) before any simulation starts, so a bad `--out`
costs the user nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

MARKER = ".ctxsim-output"


class OutputError(ValueError):
    """An output target that ctxsim refuses to write; the message names it and says why."""


def _nearest_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(path.anchor or ".")


def check_writable(folder: Path, target: Path) -> None:
    """Prove `folder` (the target's parent, or its nearest existing ancestor) takes new entries."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise OutputError(f"{target}: {base} is not a folder")
    probe = base / f".ctxsim-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError as exc:
        raise OutputError(f"{target}: cannot write in {base}: {exc.strerror}") from None
    probe.rmdir()


def is_ctxsim_folder(path: Path) -> bool:
    return (path / MARKER).is_file()


def check_folder(path: Path, overwrite: bool = False, flag: str = "--out") -> None:
    """Refuse, before any work, an output folder that would replace something that is not ours."""
    here = Path.cwd().resolve()
    resolved = path.resolve()
    if resolved == here or resolved in here.parents:
        raise OutputError(f"{flag} {path}: is the current folder or one above it; name a new folder")
    if path.exists() or path.is_symlink():
        if path.is_symlink() or not path.is_dir():
            raise OutputError(f"{flag} {path}: exists and is not a folder")
        if any(path.iterdir()):
            if not overwrite:
                raise OutputError(
                    f"{flag} {path}: folder exists and is not empty; name a new folder, or pass "
                    "--overwrite to replace an earlier ctxsim output"
                )
            if not is_ctxsim_folder(path):
                raise OutputError(
                    f"{flag} {path}: was not written by ctxsim (no {MARKER} in it); --overwrite only "
                    "replaces ctxsim's own output folders, so nothing was changed"
                )
    check_writable(path.parent, path)


def check_file(path: Path, overwrite: bool = False, flag: str = "--out") -> None:
    """Refuse, before any work, an output file that exists (unless `overwrite`) or cannot be written."""
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; name a file")
    if path.exists() and not overwrite:
        raise OutputError(f"{flag} {path}: file exists; name a new file, or pass --overwrite to replace it")
    check_writable(path.parent, path)


def _sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}.{tag}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def output_folder(path: Path, overwrite: bool = False, flag: str = "--out") -> Iterator[Path]:
    """Yield a fresh hidden folder beside `path` to write into; on success it becomes `path` (an
    earlier ctxsim output there is replaced when `overwrite`), on any error it is removed."""
    check_folder(path, overwrite, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text("written by ctxsim; --overwrite may replace this folder\n")
        yield tmp
        check_folder(path, overwrite, flag)
        old = None
        if path.exists():
            old = _sibling(path, "old")
            path.rename(old)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if is_ctxsim_folder(old):
            shutil.rmtree(old)
        else:
            old.rmdir()


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a hidden temporary file beside `path`, then move it onto `path` in one step."""
    tmp = _sibling(path, "tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_file(
    path: Path, write: Callable[[Path], object], overwrite: bool = False, flag: str = "--out"
) -> None:
    """Check `path` (see `check_file`), create its folder, and write it atomically."""
    check_file(path, overwrite, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
