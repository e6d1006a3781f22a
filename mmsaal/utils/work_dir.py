# Copyright (c) mmsaal contributors. All rights reserved.
"""A run's work dir: one run at a time (its lock), and what a finished or
paused run left there, read as data (never executed)."""
import glob
import json
import os
import os.path as osp
import socket
import time
from typing import Dict, List, Optional

from .errors import WorkDirError

LOCK_FILE = '.mmsaal.lock'


class WorkDirLock:
    """``{work_dir}/.mmsaal.lock``: one run (start, resume or label import)
    per work dir.

    The lock file holds the holder's pid, host and start time. Taking a
    lock held by a live process is refused with that information; one
    whose process on this host is gone is stale and taken over. On another
    host nothing can tell, so it is refused with the fix.

    Args:
        work_dir (str): The work dir (made if missing).
        what (str): Who takes it, for the message of a refused one.
    """

    def __init__(self, work_dir: str, what: str = 'a run') -> None:
        self.path = osp.join(work_dir, LOCK_FILE)
        self.what = what
        self.held = False

    def acquire(self) -> Optional[str]:
        """Take the lock; returns a note when a stale one was taken over.

        Raises:
            WorkDirError: The work dir is in use.
        """
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        note = None
        for _ in range(2):
            try:
                fd = os.open(self.path,
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is not None and not _stale(holder):
                    raise WorkDirError(
                        f'{osp.dirname(self.path)} is in use: {holder_text(holder)} '
                        f'holds {self.path}. Wait for it to end, or, if no '
                        f'such process runs any more, delete {self.path}.')
                note = (f'removed a stale lock of '
                        f'{holder_text(holder) if holder else "a damaged lock file"}')
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(dict(pid=os.getpid(), host=socket.gethostname(),
                               started=time.strftime('%Y-%m-%d %H:%M:%S'),
                               what=self.what), f)
            self.held = True
            return note
        raise WorkDirError(f'cannot take {self.path}: another process takes '
                           f'and drops it at the same time')

    def holder(self) -> Optional[Dict]:
        try:
            with open(self.path, encoding='utf-8') as f:
                holder = json.load(f)
            return holder if isinstance(holder, dict) and isinstance(
                holder.get('pid'), int) else None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.held:
            holder = self.holder()
            if holder and holder.get('pid') == os.getpid():
                os.unlink(self.path)
            self.held = False

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder_text(holder: Dict) -> str:
    return (f'{holder.get("what", "a run")} (pid {holder.get("pid")} on '
            f'{holder.get("host")}, since {holder.get("started")})')


def _stale(holder: Dict) -> bool:
    """Whether a lock's process is gone (only knowable on its host)."""
    if holder.get('host') != socket.gethostname():
        return False
    try:
        os.kill(int(holder['pid']), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def work_dir_config(work_dir: str) -> str:
    """The config mmengine dumped into ``work_dir`` (the only ``.py``)."""
    configs = glob.glob(osp.join(work_dir, '*.py'))
    if len(configs) != 1:
        raise SystemExit(f'cannot tell the config of {work_dir} (found '
                         f'{len(configs)} .py files): pass --config')
    return configs[0]


def experiment_record(work_dir: str) -> str:
    """The ``experiment.json`` of the run in ``work_dir`` (in its
    ``state_dir``, ``rounds`` unless the config said otherwise)."""
    found = glob.glob(osp.join(work_dir, '*', 'experiment.json'))
    if not found:
        raise SystemExit(
            f'{work_dir} holds no experiment.json: is it the work dir of an '
            f'active-learning run? Pass --config to name the run\'s config.')
    if len(found) > 1:
        raise SystemExit(f'{work_dir} holds several runs ({found}): pass '
                         f'--config')
    return found[0]


def unflatten(flat: Dict[str, object]) -> Dict:
    """The nested config of :func:`~mmsaal.apis.experiment.experiment_fields`'
    flat ``'a.b.0.c'`` keys (list items by position)."""
    root: Dict = {}
    for key in sorted(flat, key=_key_order):
        parts = key.split('.')
        node = root
        for part, below in zip(parts, parts[1:]):
            node = node.setdefault(part, {})
        node[parts[-1]] = flat[key]
    return _lists(root)


def _key_order(key: str) -> List:
    return [(0, int(p), '') if p.isdigit() else (1, 0, p)
            for p in key.split('.')]


def _lists(node):
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node
