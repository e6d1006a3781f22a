# Copyright (c) mmsaal contributors. All rights reserved.
"""The process's threads for work that releases the GIL (PNG coding, score
maps' window sums)."""
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Sequence, Tuple

#: Threads that encode or decode PNGs (OpenCV releases the GIL).
IO_THREADS = min(8, os.cpu_count() or 1)


def in_threads(function: Callable[[int], object],
                items: Sequence[int]) -> list:
    """``[function(i) for i in items]``, over :data:`IO_THREADS` threads
    when there are many."""
    return thread_map(function, items,
                       IO_THREADS if len(items) >= 16 else 1)



def thread_map(function: Callable[[int], object], items: Sequence[int],
                threads: int) -> list:
    """``[function(i) for i in items]``, over up to ``threads`` threads.

    The threads live as long as the process, so what a thread keeps for
    its next call (the ranking's workspaces, :mod:`mmsaal.regions`) is
    there for the next batch: fresh threads would fault in fresh pages.
    """
    threads = min(threads, len(items))
    if threads < 2:
        return [function(i) for i in items]
    return list(_executor(threads).map(function, items))


_EXECUTORS: Dict[int, Tuple[int, ThreadPoolExecutor]] = {}


def _executor(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` threads (a forked child, such as
    a dataloader worker, makes its own: it has none of its parent's
    threads)."""
    pid, pool = _EXECUTORS.get(threads, (None, None))
    if pid != os.getpid():
        pool = ThreadPoolExecutor(threads, thread_name_prefix='mmsaal')
        _EXECUTORS[threads] = (os.getpid(), pool)
    return pool
