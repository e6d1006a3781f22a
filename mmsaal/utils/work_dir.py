# Copyright (c) mmsaal contributors. All rights reserved.
"""A run's work dir: one run at a time (its lock), and what a finished or
paused run left there, read as data (never executed)."""
import fcntl
import glob
import json
import os
import os.path as osp
import socket
import stat
import time
import weakref
from typing import Dict, List, Optional

from .errors import WorkDirError

LOCK_FILE = '.mmsaal.lock'


class WorkDirLock:
    """``{work_dir}/.mmsaal.lock``: one run (start, resume or label import)
    per work dir.

    The lock is the operating system's: an exclusive ``flock`` on the open
    lock file, held by the process for as long as it runs and dropped by
    the kernel when it ends, however it ends. So of any number of
    processes that take it at once exactly one wins, and a lock whose
    holder died (a stale lock file) is free again with no takeover to race.
    A process forked from the holder (a data-loading worker) closes its
    copy of the file first thing, so the lock ends with the holder, not
    with its last worker.
    The file holds the holder's pid, host and start time, for the message
    of a refused taker. The file is opened without following a link, must
    be a regular file, and is read at most :data:`HOLDER_BYTES` bytes.

    Args:
        work_dir (str): The work dir.
        what (str): Who takes it, for the message of a refused one.
        create (bool): Make the work dir when it is missing (a run's
            start), or refuse (a tool that works on an existing one).
            Defaults to True.
    """

    def __init__(self, work_dir: str, what: str = 'a run',
                 create: bool = True) -> None:
        self.path = osp.join(work_dir, LOCK_FILE)
        self.what = what
        self.create = create
        self.fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self) -> Optional[str]:
        """Take the lock; returns a note when a stale lock file (its
        holder is gone) was taken over.

        Raises:
            WorkDirError: The work dir is in use, or its lock file is not a
                regular file.
        """
        work_dir = osp.dirname(self.path)
        if osp.exists(work_dir) and not osp.isdir(work_dir):
            raise WorkDirError(
                f'{work_dir} is a file, not a folder: name another work dir '
                f'(--work-dir), or move the file away.')
        if not self.create and not osp.isdir(work_dir):
            raise WorkDirError(
                f'{work_dir} does not exist: name the work dir of the run '
                f'(the --work-dir of tools/train_al.py).')
        os.makedirs(work_dir, exist_ok=True)
        for _ in range(100):
            fd = self._open()
            self.fd = fd  # from here on, a forked child closes its copy
            _HELD.add(self)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                self._close()
                raise WorkDirError(
                    f'{work_dir} is in use: '
                    f'{holder_text(holder) if holder else "another process"} '
                    f'holds {self.path}. Wait for it to end.')
            except BaseException:
                self._close()
                raise
            # Released by a holder that removed the file meanwhile: the lock
            # is on a name no other taker opens any more; take the new one.
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == \
                    os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                self._close()
                continue
            before = _read_holder(fd)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(dict(
                pid=os.getpid(), host=socket.gethostname(),
                started=time.strftime('%Y-%m-%d %H:%M:%S'),
                what=self.what)).encode())
            if before is not None:
                return f'took over the stale lock of {holder_text(before)}'
            return None
        raise WorkDirError(f'cannot take {self.path}: other processes take '
                           f'and drop it without pause')

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_NONBLOCK, 0o644)
        except OSError as err:
            raise WorkDirError(
                f'cannot open the lock file {self.path} ({err.strerror}): '
                f'it must be a regular file (not a link); delete it.') from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise WorkDirError(
                f'the lock file {self.path} is not a regular file: delete '
                f'it.')
        return fd

    def holder(self) -> Optional[Dict]:
        """Who holds (or last held) the lock, as its file says."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW
                         | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            return _read_holder(fd) if stat.S_ISREG(
                os.fstat(fd).st_mode) else None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            # Removed while still held, so no taker can hold the old file's
            # lock once this one is gone (they check the name).
            try:
                if os.stat(self.path, follow_symlinks=False).st_ino == \
                        os.fstat(self.fd).st_ino:
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
            self._close()

    def _close(self) -> None:
        os.close(self.fd)
        self.fd = None
        _HELD.discard(self)

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


#: The locks this process holds (or is taking).
_HELD = weakref.WeakSet()


def _drop_inherited_locks() -> None:
    """In a forked child: close its copies of the parent's lock files. A
    ``flock`` belongs to the open file, so a data-loading worker that kept
    its copy would hold the work dir after the run itself was killed,
    until it noticed (seconds later, or never if it hangs)."""
    for lock in list(_HELD):
        try:
            os.close(lock.fd)
        except (OSError, TypeError):
            pass
        lock.fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)

#: A lock file is read no further than this.
HOLDER_BYTES = 4096


def _read_holder(fd: int) -> Optional[Dict]:
    try:
        data = os.pread(fd, HOLDER_BYTES, 0)
        holder = json.loads(data.decode('utf-8'))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(
        holder.get('pid'), int) else None


def holder_text(holder: Dict) -> str:
    return (f'{holder.get("what", "a run")} (pid {holder.get("pid")} on '
            f'{holder.get("host")}, since {holder.get("started")})')


def work_dir_config(work_dir: str) -> str:
    """The config mmengine dumped into ``work_dir`` (the only ``.py``)."""
    configs = glob.glob(osp.join(work_dir, '*.py'))
    if len(configs) != 1:
        raise WorkDirError(f'cannot tell the config of {work_dir} (found '
                           f'{len(configs)} .py files): pass --config')
    return configs[0]


def experiment_record(work_dir: str) -> str:
    """The ``experiment.json`` of the run in ``work_dir`` (in its
    ``state_dir``, ``rounds`` unless the config said otherwise)."""
    found = glob.glob(osp.join(work_dir, '*', 'experiment.json'))
    if not found:
        raise WorkDirError(
            f'{work_dir} holds no experiment.json: is it the work dir of an '
            f'active-learning run? Pass --config to name the run\'s config.')
    if len(found) > 1:
        raise WorkDirError(f'{work_dir} holds several runs ({found}): pass '
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
