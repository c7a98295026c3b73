"""Local worker processes that end with their parent.

Workers are spawned (not forked: forking a process whose Numba kernels started OpenMP threads aborts
it). Each holds the reading end of a pipe whose writing end the parent alone holds, and runs a daemon
thread that ends the worker when that pipe reaches its end: when the parent closes it (Ctrl-C, or any
error that ends the run) or when the parent is gone (SIGKILL included: the kernel closes its end). The
thread also ends the worker when it is re-parented (os.getppid() changes), in case another process
inherited the writing end. So no worker outlives the run. Workers ignore SIGINT: a Ctrl-C at the
terminal reaches the whole process group, and the parent alone answers it.

(Not a multiprocessing Event: setting one waits for its waiters to wake, and a dead waiter never does.)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection

POLL_S = 0.2  # how often a worker looks for its parent: it ends at most this long after the parent
ORPHAN_EXIT = 70  # a worker's exit status when it ends because its parent is gone or asked it to stop


def _watch(parent: int, stop: Connection) -> None:
    # poll is true at the pipe's end (the parent never writes to it)
    while os.getppid() == parent and not stop.poll(POLL_S):
        pass
    os._exit(ORPHAN_EXIT)  # at once: the worker may be deep in a compiled kernel


def _start_worker(parent: int, stop: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(parent, stop), name="lowbit-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """A Ctrl-C while workers are spawned is held until they are, then raised. SIGINT is blocked in
    this thread, so the workers it spawns inherit it blocked across exec (a Ctrl-C cannot end one with
    a traceback while it imports lowbit), and a handler notes a SIGINT that another thread receives, so
    that no spawn is cut in half. A held Ctrl-C is raised as KeyboardInterrupt when the spawning ends."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held: list[int] = []
    handler = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGINT reaches the handler now
        signal.signal(signal.SIGINT, handler)
    if held:
        raise KeyboardInterrupt


def map_local(
    fn: Callable[[dict], dict], todo: list[dict], workers: int, lost: Callable[[dict, BaseException], dict]
) -> Iterator[dict]:
    """fn(p) for each p of `todo` in `workers` processes, in the order they finish. A point whose worker
    died gives lost(p, error) instead of ending the run."""
    context = multiprocessing.get_context("spawn")
    reader, stop = context.Pipe(duplex=False)  # closing `stop` ends the workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                               initargs=(os.getpid(), reader))  # fmt: skip
    before = set(multiprocessing.active_children())
    spawned: set = set()
    try:
        with _sigint_deferred():
            futures = {pool.submit(fn, p): p for p in todo}  # the pool spawns its workers here
        spawned = set(multiprocessing.active_children()) - before
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool as err:
                yield lost(futures[future], err)
    except BaseException:  # Ctrl-C, or the caller stopped early: end the workers now, not after their points
        stop.close()
        spawned = spawned or set(multiprocessing.active_children()) - before  # Ctrl-C while spawning
        for process in spawned:  # also those still starting, before their watch thread runs
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        stop.close()
        reader.close()
