"""Tasks for the job runner's tests. The runner's job processes import them by name: they get the
import path of the process that started the runner, the tests' included."""

import os
import time


def echo(value, *, progress):
    progress(100, "echoed")
    return {"value": value, "pid": os.getpid()}


def sleep(seconds, *, progress):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        progress(50, "sleeping")
        time.sleep(0.02)
    return "slept"


def refuse(message, *, progress):
    raise ValueError(message)


def crash(*, progress):
    raise RuntimeError("a bug")
