# Copyright (c) mmsaal contributors. All rights reserved.
"""Checkpoints: read mmengine's under ``weights_only=True``, write them
atomically, and find the one to resume from.

**Loading.** ``torch.load(weights_only=True)`` must read mmengine's own
checkpoints.

torch>=2.6 loads with ``weights_only=True`` by default, which refuses every
class outside its allow-list. mmengine 0.10.7 pickles two kinds of objects
it does not know:

- numpy arrays and scalars and mmengine's ``HistoryBuffer`` (the message
  hub): these types are allow-listed here;
- ``HistoryBuffer``'s four default statistics functions, which pickle as
  ``getattr(HistoryBuffer, 'min')``. Allowing ``getattr`` would let a file
  reach any attribute, so instead checkpoints written with mmsaal imported
  leave them out: ``HistoryBuffer.__setstate__`` registers them again on
  load anyway. Custom statistics are still written.

Nothing outside these types is ever unpickled.

**Writing.** mmengine writes a checkpoint in place, so a kill during the
write leaves a part of one under its final name; :class:`AtomicLocalBackend`
writes it under a temporary name and renames it. **Resuming** goes on from
:func:`checkpoint_to_resume`.
"""
import collections
import os
import os.path as osp
import re
from typing import Optional

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer

from .files import write_bytes_atomic

DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def mmengine_safe_globals() -> list:
    """The classes and functions an mmengine checkpoint pickles."""
    try:  # numpy>=2 moved it; checkpoints name whichever wrote them
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    dtypes = [type(np.dtype(t)) for t in set(np.sctypeDict.values())]
    scalars = list(set(np.sctypeDict.values()))
    return [
        HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
        multiarray.scalar, collections.OrderedDict, collections.Counter,
        collections.defaultdict, *dtypes, *scalars
    ]


def _history_buffer_state(buffer: HistoryBuffer) -> dict:
    """``HistoryBuffer.__getstate__`` without the default statistics."""
    state = dict(buffer.__dict__)
    state.pop('statistics_methods', None)
    custom = {
        name: method
        for name, method in buffer._statistics_methods.items()
        if name not in DEFAULT_STATISTICS
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`mmengine_safe_globals` and write history buffers
    that load with ``weights_only=True`` (idempotent)."""
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(mmengine_safe_globals())
    HistoryBuffer.__getstate__ = _history_buffer_state


ATOMIC_BACKEND = 'mmsaal_atomic_local'
CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_\d+\.pth$')


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put`` is atomic
    (:func:`write_bytes_atomic`).

    ``setup_active_learning`` gives it to ``CheckpointHook`` through
    ``backend_args=dict(backend='mmsaal_atomic_local')``, so a checkpoint
    cut short by SIGKILL never exists under its final name.
    """

    def put(self, obj: bytes, filepath) -> None:
        write_bytes_atomic(obj, str(filepath))


def checkpoint_to_resume(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from.

    That is the one mmengine's ``last_checkpoint`` names. mmengine writes
    that file in place after each checkpoint, so a kill can leave it cut
    short (empty, or naming a path that does not exist): then it is the
    newest ``epoch_N.pth`` / ``iter_N.pth`` of ``work_dir``, each complete
    since it was renamed into place.

    Returns:
        str | None: A path, or None when the work dir holds no checkpoint.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.exists(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    found = [
        osp.join(work_dir, name) for name in os.listdir(work_dir)
        if CHECKPOINT_NAME.match(name)
    ] if osp.isdir(work_dir) else []
    return max(found, key=osp.getmtime) if found else None
