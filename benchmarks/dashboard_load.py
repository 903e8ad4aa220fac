"""The dashboard under a team's load: `ctxsim dashboard` (gunicorn, the job runner) on 127.0.0.1,
and 1 to 32 users at once replaying the requests the pages send from a browser.

    python benchmarks/dashboard_load.py                       # 1, 4, 8, 16 and 32 users
    python benchmarks/dashboard_load.py --users 8 --moves 20  # one level, more designer moves
    python benchmarks/dashboard_load.py --workers 2 --threads 4 --jobs 1

Each user is a thread with its own session (a browser window) and does what a person does, in the
order the browser sends it (checked against requests captured from Chromium):
1. the hardware designer: opens the page (its layout, the analytic answer, the preset's cost
   curve, then the modified device's), and moves a knob `--moves` times, `--think-s` apart; each
   move fires the answer and the cost curve at once, as the browser does;
2. scenario runs: opens the page, presses Run on a 300-request chat scenario, polls every 0.5 s
   until the run is kept, then draws the comparison and the run's details;
3. cluster sizing: opens the page, presses Plan (8 req/s, tp=1, up to 8 devices; about 8
   simulations), polls until the plan is shown, then draws it.

A level ends when every user is done, or after `--level-timeout-s`. A job is answered when its user
saw the answer (a run kept, a plan shown); lost when it ended without one (failed, died, refused,
an HTTP error); unfinished when still queued or running at the level's end (jobs queue behind the
`--jobs` processes, so 32 plans take minutes on 2 cores). The table gives jobs sent, answered, lost
and unfinished, the p95 time from a press to its answer, p95 latency per callback, HTTP errors, and
the server's peak memory (PSS summed over its processes, so pages the forked workers share count
once). After the last level the server gets Ctrl+C (SIGINT to its process
group); any of its processes, the replaced job processes included, still alive 15 s later is
stuck, and the job folder must be gone. Targets: 0 lost and 0 stuck at 32 users, designer p95
<= 300 ms at 8 users. The client runs on the same machine and takes CPU from the server.
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.300
POLL_S = 0.5
KNOBS = {  # slider: (low, high, step) of the values a user moves it to
    "designer-bw_tbs": (1.0, 10.0, 0.01),
    "designer-tflops": (300, 3000, 1),
    "designer-mem_gb": (40, 240, 1),
}
RUN_QUERY = "?example=chat-h100&stop.requests=300"
PLAN_QUERY = "?example=chat-h100&qps=8&requests=300&ttft_p99=2&tpot_p99=0.05&tp=1&max_devices=8"
CALLBACKS = [
    ("designer answer", "designer-ttft-modified.children"),
    ("designer cost curve", '"designer-cost-curve"'),
    ("designer preset curve", "designer-preset-curve.data"),
    ("page layout", "_pages_content.children"),
    ("run start", "runs-job.data...runs-run-error"),
    ("run poll", "runs-kept.data...runs-progress.value"),
    ("runs view", "runs-compare.children"),
    ("plan start", "sizing-job.data...sizing-error"),
    ("plan poll", "sizing-result.data...sizing-progress"),
    ("plan view", "sizing-answer.children"),
]
SHOWN = ["designer answer", "designer cost curve", "page layout", "run poll", "runs view", "plan view"]


def props_by_id(node, found: dict) -> dict:
    """Every component's props in a serialised layout, as "id.prop" -> value (string ids only)."""
    if isinstance(node, list):
        for child in node:
            props_by_id(child, found)
    elif isinstance(node, dict) and "props" in node:
        props = node["props"]
        if isinstance(props.get("id"), str):
            found |= {f"{props['id']}.{k}": v for k, v in props.items() if k not in ("id", "children")}
        props_by_id(props.get("children"), found)
    return found


class User:
    """One browser window: its components' values, and the callbacks the pages fire."""

    def __init__(self, base: str, deps: list, times: dict, errors: list, lost: list, pool):
        """`times` gathers each callback's latencies, `errors` HTTP errors, `lost` why jobs were;
        `pool` (threads) sends the requests the browser sends at once."""
        self.base, self.deps, self.times, self.pool = base, deps, times, pool
        self.errors, self.lost = errors, lost
        self.http = requests.Session()
        # A browser resends a request whose reused keep-alive connection the server had just closed
        # (gunicorn closes idle ones after 2 s); so does this client, once.
        self.http.mount("http://", HTTPAdapter(max_retries=Retry(total=1, allowed_methods=None, status=0)))
        self.values = props_by_id(self.get("/_dash-layout"), {})
        self.ticks = 0

    def get(self, path: str):
        reply = self.http.get(self.base + path, timeout=120)
        reply.raise_for_status()
        return reply.json()

    def fire(self, output_part: str, changed: str | None = None, read: bool = True) -> dict:
        """Post the callback whose outputs include `output_part`, as dash-renderer posts it; with
        `read`, fold its answer into the window's values."""
        spec = next(d for d in self.deps if output_part in d["output"])
        outputs = []
        for part in spec["output"].strip(".").split("..."):
            ident, prop = part.rsplit(".", 1)
            outputs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})

        def fill(items):
            return [{**i, "value": self.values.get(f"{i['id']}.{i['property']}")} for i in items]

        inputs = fill(spec["inputs"])
        body = {
            "output": spec["output"],
            "outputs": outputs if spec["output"].startswith("..") else outputs[0],  # one: not a list
            "inputs": inputs,
            "state": fill(spec["state"]),
            "changedPropIds": [changed] if changed else [],
        }
        name = next((n for n, part in CALLBACKS if part in spec["output"]), "other")
        start = time.perf_counter()
        reply = self.http.post(f"{self.base}/_dash-update-component", json=body, timeout=120)
        self.times[name].append(time.perf_counter() - start)
        if reply.status_code not in (200, 204):
            self.errors.append(f"{name}: HTTP {reply.status_code}")
            return {}
        if not read or reply.status_code == 204:
            return {}
        answer = reply.json().get("response", {})
        for ident, props in answer.items():
            self.values |= {f"{ident}.{prop}": value for prop, value in props.items()}
        return answer

    def visit(self, path: str, query: str = "") -> None:
        self.values |= {"_pages_location.pathname": path, "_pages_location.search": query}
        answer = self.fire("_pages_content.children", "_pages_location.pathname")
        props_by_id(answer.get("_pages_content", {}).get("children"), self.values)

    def designer(self, moves: int, think_s: float, rng: np.random.Generator) -> None:
        self.visit("/")
        answer = self.pool.submit(self.fire, "designer-ttft-modified.children", read=False)
        self.fire("designer-preset-curve.data")
        answer.result()
        self.fire('"designer-cost-curve"', "designer-preset-curve.data", read=False)
        for _ in range(moves):
            time.sleep(rng.uniform(0.5, 1.5) * think_s)
            knob = str(rng.choice(list(KNOBS)))
            low, high, step = KNOBS[knob]
            self.values[f"{knob}.value"] = round(float(rng.uniform(low, high)) / step) * step
            changed = f"{knob}.value"
            answer = self.pool.submit(self.fire, "designer-ttft-modified.children", changed, False)
            self.fire('"designer-cost-curve"', changed, read=False)
            answer.result()

    def job(self, page: str, start: str, poll: str, view: str, deadline: float) -> tuple[str, float]:
        """Press the page's button and poll until its job is over: ("answered" | "lost" |
        "unfinished" at the deadline, seconds from the press to the answer drawn)."""
        pressed = time.monotonic()
        self.values[f"{page}-run.n_clicks"] = 1
        self.fire(start, f"{page}-run.n_clicks")
        error_id = f"{page}-run-error.children" if page == "runs" else f"{page}-error.children"
        if not self.values.get(f"{page}-job.data"):
            self.lost.append(f"{page}: refused: {self.values.get(error_id)}")
            return "lost", 0.0
        self.fire(f"{page}-run.disabled", f"{page}-job.data", read=False)
        while self.values.get(f"{page}-job.data") and time.monotonic() < deadline:
            time.sleep(POLL_S)
            self.ticks += 1
            self.values[f"{page}-poll.n_intervals"] = self.ticks
            self.fire(poll, f"{page}-poll.n_intervals")
        if self.values.get(f"{page}-job.data"):
            return "unfinished", 0.0
        if self.values.get(error_id):
            self.lost.append(f"{page}: {self.values[error_id]['props']['children']}")
            return "lost", 0.0
        self.fire(view, read=False)
        return "answered", time.monotonic() - pressed

    def runs(self, deadline: float) -> tuple[str, float]:
        self.visit("/runs", RUN_QUERY)
        self.fire("runs-check.children", read=False)
        self.fire("runs-compare.children")
        start, poll = "runs-job.data...runs-run-error", "runs-kept.data...runs-progress.value"
        outcome = self.job("runs", start, poll, "runs-compare.children", deadline)
        if outcome[0] == "answered":
            kept = self.values["runs-kept.data"]
            self.values["runs-selected.value"] = kept[-1]["key"]  # what the comparison selects
            self.fire("runs-classes.children", "runs-selected.value", read=False)
            if len(kept) != 1:
                self.lost.append(f"runs: kept {self.values['runs-kept.data']}")
                return "lost", 0.0
        return outcome

    def sizing(self, deadline: float) -> tuple[str, float]:
        self.visit("/sizing", PLAN_QUERY)
        self.fire("sizing-answer.children", read=False)
        start, poll = "sizing-job.data...sizing-error", "sizing-result.data...sizing-progress"
        return self.job("sizing", start, poll, "sizing-answer.children", deadline)


class Server:
    """`ctxsim dashboard` in a process group of its own, and its processes' memory over time."""

    def __init__(self, workers: int, threads: int, jobs: int):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-c", "from sim.cli import app; app()", "dashboard", "--port", str(port)]
        options = ["--workers", str(workers), "--threads", str(threads), "--jobs", str(jobs)]
        self.process = subprocess.Popen(
            [*command, *options],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        banner = self.process.stdout.readline().strip()
        print(banner)
        self.folder = Path(banner.rsplit(" ", 1)[-1])
        self.base = f"http://127.0.0.1:{port}"
        self.seen: dict[int, psutil.Process] = {}
        self.peak_bytes = 0
        self.watching = True
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(self.base, timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the server did not start")
        threading.Thread(target=self._watch, daemon=True).start()

    def family(self) -> list[psutil.Process]:
        top = psutil.Process(self.process.pid)
        return [top, *top.children(recursive=True)]

    def _watch(self) -> None:
        """Every process the server ever had (job processes are replaced when killed), and the
        peak of their summed PSS."""
        while self.watching:
            total = 0
            for p in self.family():
                self.seen.setdefault(p.pid, p)
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_full_info().pss
            self.peak_bytes = max(self.peak_bytes, total)
            time.sleep(0.5)

    def stop(self) -> tuple[int, bool]:
        """Ctrl+C to the whole group; (processes alive 15 s later, job folder removed)."""
        self.watching = False
        os.killpg(self.process.pid, signal.SIGINT)
        _gone, alive = psutil.wait_procs(list(self.seen.values()), timeout=15)
        for p in alive:
            p.kill()
        return len(alive), not self.folder.exists()


def level(server: Server, users: int, args) -> dict:
    """`users` users at once; jobs sent, answered, lost, latencies, errors and peak memory."""
    deps = requests.get(f"{server.base}/_dash-dependencies", timeout=30).json()
    times = {name: [] for name, _ in [*CALLBACKS, ("other", "")]}
    errors, lost, outcomes = [], [], []
    server.peak_bytes = 0
    deadline = time.monotonic() + args.level_timeout_s
    pool = ThreadPoolExecutor(max_workers=users)

    def session(i: int) -> None:
        rng = np.random.default_rng(i)
        time.sleep(rng.uniform(0, 1))
        try:
            user = User(server.base, deps, times, errors, lost, pool)
            user.designer(args.moves, args.think_s, rng)
            outcomes.append(user.runs(deadline))
            outcomes.append(user.sizing(deadline))
        except requests.RequestException as exc:
            errors.append(f"user {i}: {type(exc).__name__}: {str(exc)[:160]}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    pool.shutdown(wait=False, cancel_futures=True)
    ends = [end for end, _ in outcomes]
    return {
        "users": users,
        "sent": 2 * users,
        "answered": ends.count("answered"),
        "unfinished": ends.count("unfinished"),
        "job_p95_s": np.percentile([s for end, s in outcomes if end == "answered"] or [np.nan], 95),
        "p95": {name: np.percentile(t, 95) if t else float("nan") for name, t in times.items()},
        "errors": errors,
        "lost": lost,
        "peak_bytes": server.peak_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--moves", type=int, default=10, help="designer knob moves per user")
    parser.add_argument("--think-s", type=float, default=0.5, help="mean pause between moves")
    parser.add_argument("--level-timeout-s", type=float, default=900.0)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    args = parser.parse_args()
    server = Server(args.workers, args.threads, args.jobs)
    rows = []
    try:
        for users in args.users:
            started = time.monotonic()
            rows.append(level(server, users, args))
            print(f"{users} users: {time.monotonic() - started:.0f} s", flush=True)
    finally:
        stuck, removed = server.stop()
    print()
    columns = "  ".join(f"{n} p95" for n in SHOWN)
    print(f"users  jobs sent/answered/lost/unfinished  job p95  {columns}  HTTP errors  PSS peak")
    for r in rows:
        lost = r["sent"] - r["answered"] - r["unfinished"]
        jobs = f"{r['sent']}/{r['answered']}/{lost}/{r['unfinished']}"
        cells = "  ".join(f"{r['p95'][n] * 1e3:>{len(n) + 1}.0f}ms" for n in SHOWN)
        memory = f"{r['peak_bytes'] / 2**30:.2f} GiB"
        job = f"{r['job_p95_s']:>6.1f}s"
        print(f"{r['users']:>5}  {jobs:>34}  {job}  {cells}  {len(r['errors']):>11}  {memory:>8}")
        for why in sorted(set(r["errors"] + r["lost"]))[:5]:
            print(f"       {why}")
    print(f"\nafter Ctrl+C: {stuck} stuck processes, job folder {'removed' if removed else 'LEFT BEHIND'}")
    by_users = {r["users"]: r for r in rows}
    checks = [stuck == 0, removed]
    if 32 in by_users:
        checks.append(by_users[32]["answered"] == by_users[32]["sent"] and not by_users[32]["errors"])
    if 8 in by_users:
        checks.append(by_users[8]["p95"]["designer answer"] <= TARGET_S)
    targets = "0 lost and 0 stuck at 32 users; designer p95 <= 300 ms at 8"
    print("PASS" if all(checks) else "FAIL", f"(targets: {targets})")


if __name__ == "__main__":
    main()
