"""Background jobs for the dashboard: simulations and plans run by a bounded pool of worker
processes, handed over and answered through files in one job folder.

Picture a print shop. The web workers (gunicorn processes, each with threads) are the counter: they
take an order, file it in the tray (`queue/`) and answer "how far along is it?" by looking at the
order's folder. The runner is the shop floor: one process, started by `ctxsim dashboard` before the
web workers exist, that takes orders from the tray oldest first and hands each to one of a fixed
number of job processes, which write progress and the answer into the order's folder. Any web
worker can answer any poll, because everything lives in files:

    ROOT/runner.json            the runner's pid (a poll for a queued job checks it is alive)
    ROOT/queue/KEY.json         a job waiting: {"task": "module:function", "args": [...]}
    ROOT/jobs/KEY/running.json  {"pid": ...} of the job process working on it
    ROOT/jobs/KEY/job.json      the job, once handed over
    ROOT/jobs/KEY/progress.json the latest {"percent", "text"} the task reported
    ROOT/jobs/KEY/result.json   the answer, as the JSON the browser would get
    ROOT/jobs/KEY/error.json    {"state": "failed" | "died" | "cancelled", "message": ...}
    ROOT/jobs/KEY/cancel        a request to stop it, which the runner carries out

Why not Dash's background-callback managers: the disk-cache one forks a process per click from a
threaded server while other threads hold the SQLite cache's locks, and a fork taken then can
deadlock for good. Here nothing forks from a threaded process: job processes are started with
"spawn" (a fresh interpreter) by the single-threaded runner, and the web workers only write files.
Every file is written whole and then renamed into place, so a reader never sees half of one. Job
processes run at a lower CPU priority than the web workers: pages first, simulations after.

A KEY is the browser window's session id and a fresh id per click, so two users (or two clicks)
with the same inputs never share a job. A result stays until the page discards it (a run dropped
from the kept list, a plan replaced) or until it has gone unused for the runner's `ttl_s`; reading
it counts as use. A job process that dies (killed, out of memory) is reported as "died" with how it
ended; one that runs past `timeout_s` is stopped. When the owner of `job_runner` leaves it (Ctrl+C,
SIGTERM), the runner kills its job processes and the whole folder is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Literal

import psutil
from plotly.io.json import to_json_plotly

from sim.errors import explain
from sim.files import atomic_write

State = Literal["queued", "running", "done", "failed", "died", "cancelled", "gone"]
KEY = re.compile(r"[0-9a-f]{32}-[0-9a-f]{32}")
SESSION = re.compile(r"[0-9a-f]{32}")
TICK_S = 0.1  # how often the runner looks at the tray and its job processes
EXPIRE_EVERY_S = 30.0  # at most; a shorter time to live is checked twice as often
PROGRESS_EVERY_S = 0.25
STOP_S = 10.0  # how long the owner waits for the runner to stop before killing it
JOB_NICENESS = 5  # job processes yield the CPU to busy web workers (about 1 : 3), not to idle ones


class JobsBusy(ValueError):
    """A job refused because the queue, or this window's share of it, is full."""


def new_session() -> str:
    """A browser window's session id: the first half of every key its jobs get."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Status:
    """Where a job is. `progress` is the task's latest report (and its last one once done),
    `message` why it failed, died or was cancelled, `ahead` how many jobs wait before a queued one."""

    state: State
    progress: dict | None = None
    message: str = ""
    ahead: int = 0


def _read_json(path: Path) -> Any:
    """The file's JSON, or None when it is not there (yet, or any more)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write_json(path: Path, value: Any) -> None:
    text = to_json_plotly(value)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _waiting(queue: Path) -> list[Path]:
    """The queued jobs, oldest first (a file taken while listing is left out)."""
    found = []
    for path in queue.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            found.append((path.stat().st_mtime_ns, path))
    return [path for _, path in sorted(found)]


def _alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (ended, not yet reaped by its parent) does not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


ROOT_PREFIX = "ctxsim-jobs-"
"""How `job_runner` names the job folder it makes; the runner removes a folder only of that name."""


def is_job_root(root: Path) -> bool:
    """Whether `root` is a job folder `job_runner` made (its name, its queue and jobs folders): the
    only kind the runner, which removes its folder when its owner dies, may be given."""
    root = Path(root)
    return root.name.startswith(ROOT_PREFIX) and (root / "queue").is_dir() and (root / "jobs").is_dir()


class JobStore:
    """The job folder as the web workers see it: submit, look, read, cancel, discard. Cheap to make;
    it holds nothing but the folder's path and the queue's bounds."""

    def __init__(self, root: Path, max_queued: int = 64, max_per_session: int = 4):
        self.root = Path(root)
        self.queue = self.root / "queue"
        self.jobs = self.root / "jobs"
        self.max_queued = max_queued
        self.max_per_session = max_per_session

    def folder(self, key: str) -> Path:
        """The job's folder; `key` comes from the browser, so it is checked before it names a path."""
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a job key")
        return self.jobs / key

    def _active(self, folder: Path) -> bool:
        return not (folder / "result.json").exists() and not (folder / "error.json").exists()

    def submit(self, session: str, task: Callable, *args: Any) -> str:
        """Queue `task(*args, progress=...)` (a module-level function; `args` plain JSON) for
        `session`'s window and return its key. Raises `JobsBusy` when the queue is full."""
        if not isinstance(session, str) or not SESSION.fullmatch(session):
            raise ValueError(f"{session!r} is not a session id")
        waiting = len(list(self.queue.glob("*.json")))
        if waiting >= self.max_queued:
            raise JobsBusy(f"{waiting} jobs are waiting, as many as this server queues; try again shortly")
        mine = sum(self._active(f) for f in self.jobs.glob(f"{session}-*"))
        if mine >= self.max_per_session:
            raise JobsBusy(f"this window has {mine} jobs waiting or running; wait for one to finish")
        key = f"{session}-{uuid.uuid4().hex}"
        self.folder(key).mkdir()
        _write_json(
            self.queue / f"{key}.json", {"task": f"{task.__module__}:{task.__qualname__}", "args": args}
        )
        return key

    def _runner_alive(self) -> bool:
        runner = _read_json(self.root / "runner.json")
        return runner is not None and _alive(runner["pid"])

    def status(self, key: str) -> Status:
        """Where the job is. The files are read latest state first; a job moving on meanwhile
        (handed out, cancelled) is reported as still queued, and only a job whose folder is gone
        (discarded, expired) as gone."""
        folder = self.folder(key)
        if not folder.is_dir():
            return Status("gone")
        progress = _read_json(folder / "progress.json")
        if (error := _read_json(folder / "error.json")) is not None:
            return Status(error["state"], progress, error["message"])
        if (folder / "result.json").exists():
            return Status("done", progress)
        if (running := _read_json(folder / "running.json")) is not None:
            if _alive(running["pid"]) or self._runner_alive():  # the runner records how it ended
                return Status("running", progress)
            return self._ended(key, running["pid"])
        waiting = [p.stem for p in _waiting(self.queue)]
        if key in waiting and not self._runner_alive():
            return Status("failed", None, "the job runner is not running: restart the dashboard")
        return Status("queued", None, ahead=waiting.index(key) if key in waiting else 0)

    def _ended(self, key: str, pid: int) -> Status:
        """A job whose process and runner are both gone: its answer if it wrote one just before,
        else died. (While the runner lives, it records a death itself, with how the process ended.)"""
        folder = self.folder(key)
        if (error := _read_json(folder / "error.json")) is not None:
            return Status(error["state"], None, error["message"])
        if (folder / "result.json").exists():
            return Status("done", _read_json(folder / "progress.json"))
        return Status("died", None, f"the job's process (pid {pid}) ended without an answer")

    def result(self, key: str) -> Any:
        """The job's answer, or None when there is none (not done, discarded or expired). Reading
        it counts as use, so a result on screen does not expire."""
        path = self.folder(key) / "result.json"
        try:
            text = path.read_text()
            os.utime(path)
        except FileNotFoundError:
            return None
        return json.loads(text)

    def cancel(self, key: str) -> None:
        """Take a queued job out of the queue, or ask the runner to stop a running one."""
        folder = self.folder(key)
        try:
            (self.queue / f"{key}.json").unlink()
        except FileNotFoundError:
            if folder.is_dir():
                (folder / "cancel").touch()
            return
        _write_json(folder / "error.json", {"state": "cancelled", "message": "cancelled"})

    def discard(self, key: str) -> None:
        """Remove a finished job and its answer (a running one is cancelled first)."""
        folder = self.folder(key)
        if folder.is_dir() and self._active(folder):
            self.cancel(key)
            return
        shutil.rmtree(folder, ignore_errors=True)


# ---- the runner: one process, single-threaded, owning the job processes ---------------------------------
class _Progress:
    """What a task calls to report how far it got: written for the page at most every
    PROGRESS_EVERY_S, and always at 100%, so the last report is the one the page keeps."""

    def __init__(self, path: Path):
        self.path, self.last = path, 0.0

    def __call__(self, percent: float | None, text: str) -> None:
        now = time.monotonic()
        if (percent is not None and percent >= 100) or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            _write_json(self.path, {"percent": percent, "text": text})


def _work(root: Path, conn) -> None:
    """A job process: run each key the runner sends, write its answer or its error, say done. It
    runs at a lower CPU priority, so a busy simulation slows no page, and ignores Ctrl+C (the
    terminal sends it to the whole group); the runner stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(JOB_NICENESS)
    store = JobStore(root)
    while True:
        try:
            key = conn.recv()
        except EOFError:
            return
        folder = store.folder(key)
        job = json.loads((folder / "job.json").read_text())
        module, name = job["task"].split(":")
        try:
            task = getattr(importlib.import_module(module), name)
            answer = task(*job["args"], progress=_Progress(folder / "progress.json"))
        except Exception as exc:
            _write_json(folder / "error.json", {"state": "failed", "message": explain(exc)[1]})
        else:
            _write_json(folder / "result.json", answer)
        conn.send(key)


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: Any
    key: str | None = None
    started: float = 0.0
    stopping: str = ""  # why the runner killed it: "cancelled" or "timeout"


def _death(worker: _Worker, timeout_s: float) -> dict:
    """The error record of the job a dead process held."""
    if worker.stopping == "cancelled":
        return {"state": "cancelled", "message": "cancelled"}
    if worker.stopping == "timeout":
        return {"state": "failed", "message": f"stopped after {timeout_s:.0f} s, the limit for one job"}
    code = worker.process.exitcode
    how = f"was killed by {signal.Signals(-code).name}" if code and code < 0 else f"exited with code {code}"
    return {
        "state": "died",
        "message": f"the job's process (pid {worker.process.pid}) {how} before answering",
    }


class _Runner:
    def __init__(self, root: Path, workers: int, ttl_s: float, timeout_s: float):
        self.store = JobStore(root)
        self.root, self.ttl_s, self.timeout_s = Path(root), ttl_s, timeout_s
        self.context = multiprocessing.get_context("spawn")
        self.pool = [self._start() for _ in range(workers)]
        self.stop = False

    def _start(self) -> _Worker:
        mine, theirs = self.context.Pipe()
        process = self.context.Process(target=_work, args=(self.root, theirs), daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, mine)

    def serve(self) -> None:
        """Until told to stop (SIGTERM, SIGINT) or orphaned: reap, stop what must stop, hand out
        work, and now and then remove what expired. Orphaned, it also removes the folder, since the
        owner that would have is gone."""
        parent, expired = os.getppid(), time.time()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stop", True))
        while not self.stop and os.getppid() == parent:
            wait([w.conn for w in self.pool if w.key] + [w.process.sentinel for w in self.pool], TICK_S)
            self._reap()
            self._hand_out()
            if time.time() - expired > min(EXPIRE_EVERY_S, self.ttl_s / 2):
                self._expire()
                expired = time.time()
        for w in self.pool:
            w.process.kill()
            w.process.join()
        if os.getppid() != parent:
            shutil.rmtree(self.root, ignore_errors=True)

    def _reap(self) -> None:
        for i, w in enumerate(self.pool):
            if w.key and w.conn.poll():
                with contextlib.suppress(EOFError, ConnectionError):  # a killed process's pipe
                    w.conn.recv()
                    w.key = None
            if not w.process.is_alive():
                if w.key and self.store.status(w.key).state in ("running", "died"):
                    _write_json(self.store.folder(w.key) / "error.json", _death(w, self.timeout_s))
                w.conn.close()
                self.pool[i] = self._start()
            elif w.key and not w.stopping:
                if (self.store.folder(w.key) / "cancel").exists():
                    w.stopping = "cancelled"
                elif time.monotonic() - w.started > self.timeout_s:
                    w.stopping = "timeout"
                if w.stopping:
                    w.process.kill()

    def _hand_out(self) -> None:
        idle = [w for w in self.pool if w.key is None and w.process.is_alive()]
        if not idle:
            return
        for w, queued in zip(idle, _waiting(self.store.queue), strict=False):
            key = queued.stem
            folder = self.store.folder(key)
            _write_json(folder / "running.json", {"pid": w.process.pid})
            try:
                os.replace(queued, folder / "job.json")
            except FileNotFoundError:  # cancelled while being handed out
                (folder / "running.json").unlink(missing_ok=True)
                continue
            w.key, w.started, w.stopping = key, time.monotonic(), ""
            with contextlib.suppress(ConnectionError):  # it just died: _reap records the job as died
                w.conn.send(key)

    def _expire(self) -> None:
        """Remove jobs untouched for `ttl_s`: answers nobody read or looked at again, and errors."""
        held = {w.key for w in self.pool}
        now = time.time()
        for folder in self.store.jobs.iterdir():
            if folder.name in held or (self.store.queue / f"{folder.name}.json").exists():
                continue
            with contextlib.suppress(FileNotFoundError):
                used = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
                if now - used > self.ttl_s:
                    shutil.rmtree(folder, ignore_errors=True)


def _stop(pid: int) -> None:
    """SIGTERM the runner and wait for it (SIGKILL after STOP_S). Its parent may be gunicorn's
    master, whose SIGCHLD handler can reap it first; then there is nothing left to wait for."""
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_S
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.05)


@contextlib.contextmanager
def job_runner(workers: int = 1, ttl_s: float = 4 * 3600.0, timeout_s: float = 1800.0) -> Iterator[JobStore]:
    """A fresh job folder and a runner process with `workers` job processes serving it, for the
    length of the block; on leaving, the runner is stopped (its job processes with it) and the folder
    removed. Start it before any web worker is forked. A process forked inside the block (a
    gunicorn worker) leaves it by the same path when it exits, so only the process that entered
    cleans up; and the runner is known by its pid alone, so such a process has no handle on it to
    finalise. The runner gets this process's import path, as multiprocessing's spawn passes it, so
    it runs the same code the server does."""
    owner = os.getpid()
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    (root / "queue").mkdir()
    (root / "jobs").mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path)}
    args = [str(root), "--workers", str(workers), "--ttl-s", str(ttl_s), "--timeout-s", str(timeout_s)]
    pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "dashboard.jobs", *args], env)
    _write_json(root / "runner.json", {"pid": pid})
    try:
        yield JobStore(root)
    finally:
        if os.getpid() == owner:
            _stop(pid)
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """The runner's entry point: `python -m dashboard.jobs ROOT --workers N` (see `job_runner`)."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.jobs")
    parser.add_argument("root", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ttl-s", type=float, default=4 * 3600.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    args = parser.parse_args(argv)
    if not is_job_root(args.root):
        made = f"{ROOT_PREFIX}*/ with queue/ and jobs/"
        parser.error(f"{args.root}: not a job folder made by the dashboard ({made})")
    _Runner(args.root, args.workers, args.ttl_s, args.timeout_s).serve()


if __name__ == "__main__":
    main()
