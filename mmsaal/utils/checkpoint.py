# Copyright (c) mmsaal contributors. All rights reserved.
"""Let ``torch.load(weights_only=True)`` read mmengine's own checkpoints.

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
"""
import collections

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

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
