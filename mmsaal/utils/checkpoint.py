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
import pickle
import re
import zipfile
from typing import List, Optional

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer

from .errors import WorkDirError
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
CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


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
    """The checkpoint ``--resume`` continues from, in ``work_dir``.

    That is the one mmengine's ``last_checkpoint`` names, resolved inside
    the work dir: a path elsewhere (the work dir was moved or copied) is
    re-rooted to the same-named file here, or refused. mmengine writes that
    file in place after each checkpoint, so a kill can leave it cut short
    or garbled: then, and when the checkpoint it names is damaged (cut
    short: its zip directory is missing), it is the newest complete
    ``epoch_N.pth`` / ``iter_N.pth`` of the work dir by N. What was
    skipped is logged.

    Returns:
        str | None: A path, or None when the work dir holds no checkpoint.

    Raises:
        WorkDirError: ``last_checkpoint`` names a file outside the work dir
            that it does not hold, or every checkpoint of the work dir is
            damaged.
    """
    from mmengine.logging import print_log
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.exists(pointer):
        try:
            with open(pointer, encoding='utf-8') as f:
                named = f.read().strip() or None
        except (OSError, ValueError):
            print_log(f'{pointer} is damaged: resuming from the newest '
                      f'complete checkpoint instead.', logger='current')
    if named is not None:
        path = _inside(work_dir, named)
        if not _is_inside(work_dir, path) and osp.isfile(named):
            raise WorkDirError(
                f'{pointer} names {named}, which is outside {work_dir}: a '
                f'resume takes only the checkpoints of its own work dir. '
                f'Resume from it on purpose with --resume {named}, or delete '
                f'{pointer} to resume from the newest checkpoint here.')
        if path != named:
            print_log(f'{pointer} names {named}, outside this work dir (it '
                      f'was moved or copied): resuming from {path}.',
                      logger='current')
        if osp.isfile(path):
            reason = unreadable(path)
            if reason is None:
                return path
            print_log(f'{path} is damaged: it {reason}; resuming from the '
                      f'newest complete checkpoint before it.',
                      logger='current')
    skipped = []
    for path in numbered_checkpoints(work_dir):
        reason = unreadable(path)
        if reason is None:
            return path
        skipped.append(path)
        print_log(f'{path} is damaged: it {reason}; skipped.',
                  logger='current')
    if skipped or named is not None:
        raise WorkDirError(
            f'{work_dir} holds no checkpoint to resume from: '
            + (f'{", ".join(skipped)} {"is" if len(skipped) == 1 else "are"} '
               f'damaged' if skipped else f'{pointer} names {named}, which '
               f'does not exist') +
            f'. Restore one, or delete {"them" if skipped else pointer} and '
            f'{pointer} to train the last round again from its start.')
    return None


def numbered_checkpoints(work_dir: str) -> List[str]:
    """``epoch_N.pth`` / ``iter_N.pth`` of ``work_dir``, newest (largest N)
    first."""
    if not osp.isdir(work_dir):
        return []
    found = [(int(m.group(2)), name) for name in os.listdir(work_dir)
             for m in [CHECKPOINT_NAME.match(name)] if m]
    return [osp.join(work_dir, name) for _, name in sorted(found,
                                                           reverse=True)]


#: The first bytes of torch's legacy (pre-zip) format: pickle protocol 2
#: and the first bytes of its magic number.
LEGACY_HEAD = b'\x80\x02\x8a\x0a'


def is_complete(path: str) -> bool:
    """Whether a checkpoint file is whole: torch's zip format ends with its
    directory, which a file cut short lacks. A file in neither of torch's
    formats (junk, a text file) is not a checkpoint at all."""
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
        if head == LEGACY_HEAD:
            return True
        if head != b'PK\x03\x04':
            return False
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith('data.pkl') for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def unreadable(path: str) -> Optional[str]:
    """Why ``path`` is no checkpoint that loads under ``weights_only=True``
    (cut short, junk, or a pickle naming a class outside the allow-list),
    or None when it loads. The file is mapped, not read whole."""
    if not osp.isfile(path):
        return 'does not exist'
    if not is_complete(path):
        return 'is damaged (cut short?) or not a checkpoint'
    try:
        torch.load(path, map_location='cpu', weights_only=True,
                   mmap=zipfile.is_zipfile(path))
    except Exception as err:  # noqa: BLE001 (every way a load fails)
        first = str(err).strip().splitlines()
        reason = first[0] if first else type(err).__name__
        if 'Weights only load failed' in reason or isinstance(
                err, pickle.UnpicklingError):
            return ('holds objects a checkpoint may not (torch refused '
                    'them under weights_only=True); it is not loaded')
        return f'cannot be loaded ({reason[:200]})'
    return None


def load_checkpoint_file(path: str, what: str):
    """``torch.load(path, weights_only=True)`` on the CPU; any failure is a
    :class:`WorkDirError` that names ``what``, the file and the fix."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001
        reason = unreadable(path) or 'cannot be loaded'
        raise WorkDirError(
            f'{what} {path} cannot be read: it {reason}. Restore it, or '
            f'delete it (and what needs it) to go back.') from None


def check_checkpoint(path: str, what: str) -> None:
    """Refuse a checkpoint to start from that is missing, damaged or holds
    what ``weights_only`` refuses, before anything is written."""
    if '://' in str(path):
        return  # a URL: mmengine fetches it
    reason = unreadable(path)
    if reason is not None:
        raise WorkDirError(f'{what} {path} {reason}. Correct the path, '
                           f'name another checkpoint, or drop it.')


def _is_inside(work_dir: str, path: str) -> bool:
    root = osp.realpath(work_dir)
    return osp.realpath(path).startswith(root + os.sep)


def _inside(work_dir: str, named: str) -> str:
    """``named`` when it lies inside ``work_dir``, else the same-named file
    of ``work_dir`` when there is one, else ``named``."""
    if _is_inside(work_dir, named):
        return named
    here = osp.join(work_dir, osp.basename(named))
    return here if osp.isfile(here) else named
