"""The one process supervisor: child processes that die with the node and are restarted.

Receiving processes (`runtime.receiving`), local job workers (`runtime.local_executor`)
and `nadir worker`'s Celery workers (`runtime.celery_worker`) are all `ChildProcesses`.
A child never outlives its parent: it asks the kernel for SIGKILL when its parent
dies (PR_SET_PDEATHSIG, so also after `kill -9` of the node), and checks at start
that the parent that spawned it is still there. It stops on SIGTERM (the parent's
stop: `target` gets an Event that is set then) and ignores SIGINT (a Ctrl-C in a
terminal reaches the parent, which stops the children). A child that dies is
restarted after `RESTART_DELAY_S`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from daemon import logs

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
RESTART_DELAY_S = 5.0
STOP_TIMEOUT_S = 30.0

# the function a child runs: called with its arguments, then an Event set on SIGTERM
ChildTarget = Callable[..., None]


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies; exit now if it
    already has (the parent died before the request took effect)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(err)}")
    if os.getppid() != parent_pid:
        os._exit(0)


def _child_main(target: ChildTarget, args: tuple[Any, ...], parent_pid: int, log_level: int,
                log_format: logs.Format = "text") -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logs.configure(log_level, log_format)  # the parent's level and format
    target(*args, stop)


class ChildProcesses:
    """`count` spawned processes running `target(*args, stop_event)`; restarted if they die."""

    def __init__(self, name: str, target: ChildTarget, args: tuple[Any, ...], count: int) -> None:
        self.name = name
        self._target = target
        self._args = args
        self._count = count
        self._mp = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._procs = [self._spawn(i) for i in range(self._count)]
        self._watcher = threading.Thread(target=self._watch, name=f"{self.name}-watch", daemon=True)
        self._watcher.start()

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def stop(self) -> None:
        self._stopping.set()
        for proc in self._procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("%s process %s did not stop in time: killed", self.name, proc.pid)
                proc.kill()
                proc.join()
        self._procs = []
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def _spawn(self, index: int) -> BaseProcess:
        proc = self._mp.Process(
            target=_child_main,
            args=(self._target, (*self._args, index), os.getpid(), logging.getLogger().getEffectiveLevel(),
                  logs.current_format()),
            name=f"{self.name}-{index}",
            daemon=False,
        )
        proc.start()
        return proc

    def _watch(self) -> None:
        # PR_SET_PDEATHSIG follows the thread that spawned a child: children restarted
        # here are spawned by this thread, which lives until stop()
        while not self._stopping.wait(1.0):
            for i, proc in enumerate(self._procs):
                if proc.is_alive():
                    continue
                log.error(
                    "%s process %s exited (code %s); restarting it in %.0f s",
                    self.name, proc.pid, proc.exitcode, RESTART_DELAY_S,
                )
                if self._stopping.wait(RESTART_DELAY_S):
                    return
                self._procs[i] = self._spawn(i)
