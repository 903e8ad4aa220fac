"""The job runner with real processes: jobs answer, fail with their reason, die and are reported,
are cancelled, time out, expire, are bounded, and leave nothing behind when the runner stops."""

import json
import os
import signal
import subprocess
import sys
import time

import job_tasks
import pytest

from dashboard.jobs import JobsBusy, JobStore, job_runner, main, new_session


def wait_for(condition, timeout_s: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.02)
    return value


def pid_of(store: JobStore, key: str) -> int:
    return json.loads((store.folder(key) / "running.json").read_text())["pid"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_answers_and_its_answer_stays_until_discarded(jobs, session, finish):
    key = jobs.submit(session, job_tasks.echo, [1, "two"])
    assert key.startswith(f"{session}-")
    status = finish(key)
    assert status.state == "done" and status.progress == {"percent": 100, "text": "echoed"}
    assert jobs.result(key)["value"] == [1, "two"]
    assert jobs.result(key)["value"] == [1, "two"]  # reading it does not use it up
    jobs.discard(key)
    assert jobs.result(key) is None and jobs.status(key).state == "gone"


def test_two_windows_with_the_same_inputs_get_their_own_answers(jobs, finish):
    windows = [new_session(), new_session()]
    keys = [jobs.submit(s, job_tasks.echo, "same") for s in windows]
    assert keys[0] != keys[1]
    assert [finish(k).state for k in keys] == ["done", "done"]
    assert [jobs.result(k)["value"] for k in keys] == ["same", "same"]
    again = jobs.submit(windows[0], job_tasks.echo, "same")  # the same window clicking again
    assert again not in keys and finish(again).state == "done"


def test_a_failed_job_says_why(jobs, session, finish):
    refused = finish(jobs.submit(session, job_tasks.refuse, "stop.requests: must be at least 1"))
    assert (refused.state, refused.message) == ("failed", "stop.requests: must be at least 1")
    crashed = finish(jobs.submit(session, job_tasks.crash))
    assert crashed.state == "failed"
    assert crashed.message.startswith("internal error: RuntimeError: a bug; traceback saved to ")


def test_a_killed_job_process_is_reported_and_replaced(jobs, session, finish):
    key = jobs.submit(session, job_tasks.sleep, 30)
    wait_for(lambda: jobs.status(key).state == "running", what="running job")
    os.kill(pid_of(jobs, key), signal.SIGKILL)
    status = finish(key, timeout_s=10)
    assert status.state == "died"
    assert status.message.endswith("was killed by SIGKILL before answering")
    assert finish(jobs.submit(session, job_tasks.echo, 1)).state == "done"  # a new process took over


def test_cancel_a_queued_and_a_running_job(jobs, session, finish):
    running = jobs.submit(session, job_tasks.sleep, 30)
    queued = jobs.submit(session, job_tasks.echo, 1)
    wait_for(lambda: jobs.status(running).state == "running", what="running job")
    assert jobs.status(queued).state == "queued"
    jobs.cancel(queued)
    assert (jobs.status(queued).state, jobs.status(queued).message) == ("cancelled", "cancelled")
    pid = pid_of(jobs, running)
    jobs.cancel(running)
    assert finish(running, timeout_s=10).state == "cancelled"
    wait_for(lambda: not alive(pid), what="end of the cancelled job's process")


def test_a_job_past_its_time_limit_is_stopped(session):
    with job_runner(workers=1, timeout_s=0.5) as store:
        key = store.submit(session, job_tasks.sleep, 30)
        status = wait_for(lambda: (s := store.status(key)).state == "failed" and s, what="time-out")
        assert status.message == "stopped after 0 s, the limit for one job"


def test_unused_answers_expire_and_answers_in_use_stay(session):
    with job_runner(workers=1, ttl_s=1.0) as store:
        unused, used = (store.submit(session, job_tasks.echo, i) for i in range(2))
        wait_for(lambda: store.status(used).state == "done" == store.status(unused).state, what="answers")
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            assert store.result(used) is not None  # a window showing it reads it on every update
            time.sleep(0.2)
        assert store.status(unused).state == "gone" and store.status(used).state == "done"


def test_the_queue_is_bounded(jobs, session):
    tight = JobStore(jobs.root, max_queued=2, max_per_session=2)
    first = tight.submit(session, job_tasks.sleep, 30)
    wait_for(lambda: tight.status(first).state == "running", what="running job")
    second = tight.submit(session, job_tasks.sleep, 30)
    with pytest.raises(JobsBusy, match=r"this window has 2 jobs waiting or running"):
        tight.submit(session, job_tasks.echo, 1)
    other = tight.submit(new_session(), job_tasks.echo, 1)
    with pytest.raises(JobsBusy, match=r"2 jobs are waiting, as many as this server queues"):
        tight.submit(new_session(), job_tasks.echo, 1)
    for key in (other, second, first):
        tight.cancel(key)
    wait_for(lambda: tight.status(first).state == "cancelled", what="cancelled job")


def test_a_job_between_the_queue_and_its_process_is_queued_not_gone(tmp_path, session):
    """The runner writes running.json, then takes the job from the queue; a poll reading in between
    finds neither. Only a job whose folder is gone is gone."""
    store = JobStore(tmp_path)
    key = f"{session}-{new_session()}"
    store.folder(key).mkdir(parents=True)
    assert store.status(key).state == "queued"
    store.folder(key).rmdir()
    assert store.status(key).state == "gone"


@pytest.mark.parametrize("key", ["../../etc", "a" * 65, None, f"{'0' * 32}-{'0' * 31}/"])
def test_keys_from_the_browser_are_checked(jobs, key):
    with pytest.raises(ValueError, match=r"is not a job key"):
        jobs.status(key)
    with pytest.raises(ValueError, match=r"is not a session id"):
        jobs.submit("../x", job_tasks.echo, 1)


def test_leaving_the_runner_stops_its_processes_and_removes_the_folder(session):
    with job_runner(workers=2) as store:
        key = store.submit(session, job_tasks.sleep, 30)
        wait_for(lambda: store.status(key).state == "running", what="running job")
        pids = [json.loads((store.root / "runner.json").read_text())["pid"], pid_of(store, key)]
    assert not store.root.exists()
    wait_for(lambda: not any(alive(p) for p in pids), timeout_s=5, what="end of the runner's processes")


def test_a_runner_whose_owner_is_killed_cleans_up(tmp_path):
    """The owner (`ctxsim dashboard`) killed with SIGKILL runs no cleanup; the runner sees it is
    orphaned, stops its job processes and removes the folder itself."""
    script = (
        "import sys, time\n"
        "from dashboard.jobs import job_runner\n"
        "with job_runner() as store:\n"
        "    print(store.root, flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    root = JobStore(owner.stdout.readline().strip()).root
    runner = json.loads((root / "runner.json").read_text())["pid"]
    store = JobStore(root)
    key = store.submit(new_session(), job_tasks.sleep, 30)
    wait_for(lambda: store.status(key).state == "running", what="running job")
    worker = pid_of(store, key)
    owner.kill()
    owner.wait()
    wait_for(lambda: not root.exists(), timeout_s=10, what="removal of the job folder")
    wait_for(lambda: not alive(runner) and not alive(worker), timeout_s=5, what="end of the processes")


def test_a_job_whose_runner_is_gone_is_reported(session):
    with job_runner(workers=1) as store:
        running = store.submit(session, job_tasks.sleep, 30)
        queued = store.submit(session, job_tasks.echo, 1)
        wait_for(lambda: store.status(running).state == "running", what="running job")
        os.kill(json.loads((store.root / "runner.json").read_text())["pid"], signal.SIGKILL)
        os.kill(pid_of(store, running), signal.SIGKILL)
        failed = wait_for(lambda: (s := store.status(queued)).state == "failed" and s, what="report")
        assert failed.message == "the job runner is not running: restart the dashboard"
        died = wait_for(lambda: (s := store.status(running)).state == "died" and s, what="report")
        assert died.message.endswith("ended without an answer")


def test_the_runner_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    """The runner removes its folder when its owner dies, so it must never be pointed at a user's."""
    mine = tmp_path / "results"
    (mine / "queue").mkdir(parents=True)
    (mine / "jobs").mkdir()
    (mine / "keep.txt").write_text("a user's file")
    with pytest.raises(SystemExit) as exit_:
        main([str(mine)])
    assert exit_.value.code != 0
    assert "not a job folder made by the dashboard" in capsys.readouterr().err
    assert (mine / "keep.txt").read_text() == "a user's file"
