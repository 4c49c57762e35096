"""Run untrusted work, native decoders on delivered files, in worker processes that may die.

A segfault in a native decoder bypasses try/except, and under ProcessPoolExecutor it breaks the
whole pool (BrokenProcessPool) with every pending item. Here each worker is a plain process with
its own socket, fed one item at a time; the parent waits on the sockets, the process exit
handles and each item's deadline. A crash or a timeout costs that one item, reported as a
failure dict, and only that worker is replaced. Workers are long-lived because warming one up
(Essentia import, librosa's first call) takes seconds: the initializer runs once per worker,
never per item.

Results are whatever `func` returns (plain picklable dicts); failures are
`{"ok": False, "reason": failure_reason, "message": ..., "failure": "crash" | "timeout" |
"exception"}`. A pool is not thread-safe.

Workers are fresh interpreters, `python -m pipeline.audio.worker`, whatever process starts
them: the CLI, `airflow dags test`, an Airflow task process, a Celery worker or a pod. Not
multiprocessing's spawn, which re-runs the parent's main script in every child (under Airflow
that is `bin/airflow`, and importing Airflow in a task's environment fails), and not fork,
which is unsafe in a parent that runs threads (Airflow, pymongo). A child imports only the
modules of `func` and `initializer`, which must be picklable by reference (importable by
name, not defined in `__main__`); it gets the parent's `sys.path` to find them.
"""

from __future__ import annotations

import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

CRASH, TIMEOUT, EXCEPTION = "crash", "timeout", "exception"
STOP_GRACE_S = 2.0
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class PoolError(RuntimeError):
    """A worker could not be made ready: its initializer failed, died or hung. Not an item's
    fault, so it is raised rather than reported per item."""


def limit_native_threads(threads: int = 1) -> None:
    """Keep native libraries to `threads` threads in this process.

    With one worker per core, OpenBLAS (numpy) and OpenMP (Essentia) each starting a thread per
    core oversubscribe the machine; measured here that halves throughput. Environment variables
    cover libraries loaded later (Essentia is imported lazily); threadpoolctl, when installed,
    resizes the ones already loaded (numpy's OpenBLAS)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class _Child:
    """A worker process started with subprocess, seen through multiprocessing.Process's
    names (exitcode < 0 for a signal, a sentinel to wait on) so the pool reads the same."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.sentinel = _pidfd(popen.pid)

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return
        self.close()

    def close(self) -> None:
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux); without it a dead
    worker is still seen, by its socket closing."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _stderr() -> int:
    """Where a worker's own output goes: the parent's stderr (a task log under Airflow),
    never its stdout, which may carry a command's JSON result."""
    try:
        return sys.__stderr__.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL


def worker_main(fd: int) -> None:
    """Entry point of a worker process (`python -m pipeline.audio.worker FD`)."""
    from multiprocessing.connection import Connection

    os.set_inheritable(fd, False)  # a decoder's own subprocesses must not hold it open
    conn = Connection(fd)
    path, payload = conn.recv()
    sys.path[:0] = [p for p in path if p not in sys.path]
    func, initializer, memory_limit_bytes, threads = pickle.loads(payload)
    _serve(conn, func, initializer, memory_limit_bytes, threads)


@dataclass
class _Worker:
    process: _Child
    conn: Connection
    started: float
    ready: bool = False
    index: int | None = None
    deadline: float = math.inf


def _serve(
    conn: Connection, func, initializer, memory_limit_bytes: int | None, threads: int | None
) -> None:
    """Worker main loop: warm up once, then answer one item at a time until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads:
        limit_native_threads(threads)
    if memory_limit_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
    started = time.perf_counter()
    try:
        if initializer is not None:
            initializer()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("failed", f"initializer failed: {exc!r}\n{traceback.format_exc()}"))
        return
    conn.send(("ready", time.perf_counter() - started))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "item":
            return
        try:
            reply = ("done", func(message[1]))
        except Exception as exc:  # noqa: BLE001 - one item's failure is reported, not fatal
            reply = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
            conn.send(("error", f"result could not be sent back: {exc!r}"))


def _exit_description(process) -> str:
    code = process.exitcode
    if code is None:
        return "worker stopped answering"
    if code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"


def _kill(worker: _Worker) -> None:
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(timeout=STOP_GRACE_S)
    worker.process.close()
    worker.conn.close()
    worker.ready, worker.index = False, None


def _shutdown(workers: list[_Worker]) -> None:
    """Idle workers are asked to stop; busy or still warming ones cannot listen, so are killed."""
    for worker in workers:
        if not worker.ready or worker.index is not None:
            _kill(worker)
            continue
        try:
            worker.conn.send(("stop",))
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        _kill(worker)
    workers.clear()


class IsolatedPool:
    """N long-lived worker processes; each item gets `timeout_s` and costs only itself."""

    def __init__(
        self,
        func: Callable[[Any], dict],
        *,
        workers: int | None = None,
        timeout_s: float = 300.0,
        initializer: Callable[[], None] | None = None,
        warmup_timeout_s: float = 600.0,
        failure_reason: str = "AUDIO_UNDECODABLE",
        memory_limit_bytes: int | None = None,
        threads_per_worker: int | None = 1,
    ):
        self.func = func
        self.workers = workers or default_workers()
        self.timeout_s = timeout_s
        self.initializer = initializer
        self.warmup_timeout_s = warmup_timeout_s
        self.failure_reason = failure_reason
        self.memory_limit_bytes = memory_limit_bytes
        self.threads_per_worker = threads_per_worker
        self.warmup_seconds: list[float] = []
        self.replaced = 0
        self._payload = pickle.dumps(
            (func, initializer, memory_limit_bytes, threads_per_worker),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        self._pool: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._pool)

    def __enter__(self) -> IsolatedPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (politely, then by SIGKILL); the pool can be used again after."""
        _shutdown(self._pool)

    def map(self, items: Iterable[Any]) -> list[dict]:
        """One result per item, in input order."""
        items = list(items)
        results: list[dict | None] = [None] * len(items)
        for index, result in self.imap_unordered(items):
            results[index] = result
        return results  # type: ignore[return-value]

    def imap_unordered(self, items: Iterable[Any]) -> Iterator[tuple[int, dict]]:
        """(input index, result) as each item finishes. Stopping early kills busy workers."""
        pending = deque(enumerate(items))
        self._start(min(self.workers, len(pending)))
        try:
            while pending or any(w.index is not None for w in self._pool):
                self._dispatch(pending)
                yield from self._collect()
        finally:
            for worker in [w for w in self._pool if w.index is not None]:
                _kill(worker)
                self._pool.remove(worker)

    def _start(self, count: int) -> None:
        while len(self._pool) < count:
            self._pool.append(self._spawn())

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        if self.threads_per_worker:
            env.update(dict.fromkeys(THREAD_VARIABLES, str(self.threads_per_worker)))
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", "pipeline.audio.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=_stderr(),
                env=env,
            )
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        conn.send((list(sys.path), self._payload))
        return _Worker(_Child(popen), conn, time.monotonic())

    def _replace(self, worker: _Worker) -> None:
        _kill(worker)
        self._pool[self._pool.index(worker)] = self._spawn()
        self.replaced += 1

    def _give_up(self, worker: _Worker, message: str) -> None:
        _kill(worker)
        self._pool.remove(worker)
        raise PoolError(message)

    def _failure(self, kind: str, message: str) -> dict:
        return {"ok": False, "reason": self.failure_reason, "message": message, "failure": kind}

    def _dispatch(self, pending: deque) -> None:
        for worker in self._pool:
            if not pending:
                return
            if worker.ready and worker.index is None:
                index, item = pending.popleft()
                try:
                    worker.conn.send(("item", item))
                except (BrokenPipeError, ConnectionResetError):
                    pending.appendleft((index, item))
                    continue
                worker.index = index
                worker.deadline = time.monotonic() + self.timeout_s

    def _next_deadline(self) -> float | None:
        deadlines = [w.deadline for w in self._pool if w.index is not None]
        deadlines += [w.started + self.warmup_timeout_s for w in self._pool if not w.ready]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _collect(self) -> Iterator[tuple[int, dict]]:
        waitables = {}
        for worker in self._pool:
            waitables[worker.conn] = worker
            if worker.process.sentinel is not None:
                waitables[worker.process.sentinel] = worker
        signalled = {id(waitables[obj]) for obj in wait(list(waitables), self._next_deadline())}
        for worker in list(self._pool):
            if id(worker) in signalled:
                yield from self._receive(worker)
        now = time.monotonic()
        for worker in list(self._pool):
            if worker.index is not None and now >= worker.deadline:
                index = worker.index
                self._replace(worker)
                message = f"no result within {self.timeout_s:g} s; worker killed"
                yield index, self._failure(TIMEOUT, message)
            elif not worker.ready and now >= worker.started + self.warmup_timeout_s:
                self._give_up(worker, f"worker not ready after {self.warmup_timeout_s:g} s")

    def _receive(self, worker: _Worker) -> Iterator[tuple[int, dict]]:
        try:
            kind, payload = worker.conn.recv() if worker.conn.poll() else (None, None)
        except (EOFError, OSError):
            kind, payload = None, None
        if kind == "ready":
            worker.ready = True
            self.warmup_seconds.append(payload)
        elif kind == "failed":
            self._give_up(worker, payload)
        elif kind in ("done", "error"):
            index, worker.index, worker.deadline = worker.index, None, math.inf
            yield index, payload if kind == "done" else self._failure(EXCEPTION, payload)
        else:
            worker.process.join(timeout=STOP_GRACE_S)
            if not worker.ready:
                self._give_up(worker, f"{_exit_description(worker.process)} while warming up")
            index = worker.index
            self._replace(worker)
            if index is not None:
                yield index, self._failure(CRASH, _exit_description(worker.process))
