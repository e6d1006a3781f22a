# Copyright (c) mmsaal contributors. All rights reserved.
"""Atomic writes: a reader, or a kill at any moment, sees the old file or
the whole new one, never a part.

A file is written to a fresh temporary file in its folder, created with
``O_CREAT | O_EXCL`` by :func:`tempfile.mkstemp` (so a planted file or
link under a guessable name is never opened, let alone followed), flushed
to disk and renamed into place. A failed write removes its temporary
file; one a kill left behind is removed by :func:`remove_temporaries` at
the next start.
"""
import contextlib
import json
import os
import os.path as osp
import re
import stat
import tempfile
from typing import BinaryIO, Iterator

from .errors import WorkDirError

#: Temporary files start with this; nothing else in a work dir does.
TMP_PREFIX = '.mmsaal-tmp-'
#: The temporary names of earlier versions (``.{name}.tmp{pid}``).
OLD_TMP = re.compile(r'^\..+\.tmp\d+$')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mkstemp makes files only its owner reads; a written file gets the
#: permissions ``open`` would have given it. Read once: umask() sets it
#: to read it, which threads must not race.
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as f: f.write(...)`` writes ``path``
    atomically (binary)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'{TMP_PREFIX}{osp.basename(path)[:64]}.', dir=folder)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if osp.islink(path):
            # os.replace swaps a link itself, never its target; say so
            # rather than leave a planted link's target looking written.
            os.unlink(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def remove_temporaries(folder: str) -> int:
    """Remove the temporary files a killed write left directly in
    ``folder``; returns how many. Call it only while no other process
    writes there (one run per work dir holds its lock)."""
    if not osp.isdir(folder):
        return 0
    removed = 0
    for name in os.listdir(folder):
        path = osp.join(folder, name)
        if (name.startswith(TMP_PREFIX) or OLD_TMP.match(name)) and \
                not osp.isdir(path):
            os.unlink(path)
            removed += 1
    return removed


#: JSON files mmsaal reads (labels, pool annotation files, round records)
#: are refused past this size before they are parsed.
MAX_JSON_MB = 1024


class FileTooLarge(OSError):
    """A file over the size a reader takes."""


def read_capped(path: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, refusing one of more than
    ``max_bytes`` (:class:`FileTooLarge`) and anything that is not a
    regular file (a device such as ``/dev/zero``, a folder, a pipe) before
    reading it.

    Raises:
        OSError: It cannot be read, or is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f'{path} is not a regular file')
        if info.st_size > max_bytes:
            raise FileTooLarge(f'{info.st_size / 2**20:.2f} MB')
        with os.fdopen(os.dup(fd), 'rb') as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise FileTooLarge(f'over {max_bytes / 2**20:.0f} MB')
        return data
    finally:
        os.close(fd)


def read_json(path: str, what: str, max_mb: float = None):
    """A JSON file, refusing NaN / Infinity (which JSON does not have), a
    file that is not a regular one (a device, a folder) and one larger than
    ``max_mb`` (default :data:`~mmsaal.utils.files.MAX_JSON_MB`) before
    reading it."""
    limit = MAX_JSON_MB if max_mb is None else max_mb
    try:
        data = read_capped(path, int(limit * 2**20))
    except FileTooLarge as err:
        raise WorkDirError(
            f'{what} {path} is {err}, over '
            + (f'--max-mb {limit:g}' if max_mb is not None else
               f'{limit:g} MB') +
            ': a query\'s labels are far smaller. Check the file'
            + (', or raise --max-mb.' if max_mb is not None else '.')
        ) from None
    except OSError as err:
        raise WorkDirError(f'cannot read {what} {path}: {err}') from None
    try:
        return json.loads(data.decode('utf-8'), parse_constant=_no_constant)
    except ValueError as err:
        raise WorkDirError(f'cannot read {what} {path}: {err}') from None


def _no_constant(name: str):
    raise ValueError(f'{name} is not a number JSON knows')
