# Copyright (c) mmsaal contributors. All rights reserved.
"""The pool state on disk: one folder per round, written atomically.

A round folder ``round_XX`` is assembled under a temporary name and renamed
into place in one step, so after a crash at any point the folder either
holds the whole round or does not exist. The latest round folder is the
labeled set; nothing ever rewrites a finished round.
"""
import json
import os
import os.path as osp
import re
import shutil
import uuid
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from mmsaal.utils.checkpoint import load_checkpoint_file
from mmsaal.utils.errors import FieldError, WorkDirError
from mmsaal.utils.files import (MAX_JSON_MB, atomic_write, read_capped,
                                write_bytes_atomic)
from .revealed import REVEALED_FILE, Reveal, load_reveals
from .state import PoolState

MASK_DIR = 'revealed'
ROUND_DIR = re.compile(r'^round_(\d+)$')
QUERY_DIR = re.compile(r'^query_(\d+)$')
TMP_PREFIX = '.incomplete_'
# The random generators of every rank once the round was chosen.
RANDOM_STATES = 'random_states.pth'
#: A segmentation round's ``queried_classes``, counted beside the training
#: that follows the round (it decodes every queried label map).
CLASSES_FILE = 'classes.json'
# Which run made the round folders: checkpoints carry the same id.
RUN_FILE = 'run.json'


def write_text_atomic(text: str, path: str) -> None:
    """Write ``text`` to ``path`` through a temporary file + rename, so a
    reader sees the old file or the new one, never a part."""
    write_bytes_atomic(text.encode('utf-8'), path)


def dump_json_atomic(obj, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` atomically, as a stream.

    A dict is written one key a line; a list of rows (or any iterator,
    e.g. a generator of a million items) one row a line, without building
    the text in memory; a list of plain numbers or strings on one line.
    Nested values are compact, so a row stays on one line that a person
    reads and ``grep`` finds.
    """
    with atomic_write(path) as raw:
        f = _TextSink(raw)
        if isinstance(obj, dict):
            f.write('{')
            for j, (key, value) in enumerate(obj.items()):
                f.write(',\n ' if j else '\n ')
                f.write(json.dumps(str(key)) + ': ')
                _dump_value(value, f, ' ')
            f.write('\n}' if obj else '}')
        else:
            _dump_value(obj, f, '')
        f.write('\n')
        f.flush()


def _dump_value(value, f, indent: str) -> None:
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float, str, bool)) or v is None
            for v in value):
        f.write(json.dumps(value))  # scalars: one line, at C speed
    elif isinstance(value, (list, tuple)) or hasattr(value, '__next__'):
        f.write('[')
        first = True
        for item in value:
            f.write(('\n' if first else ',\n') + indent + ' ')
            f.write(json.dumps(item, default=_builtin))
            first = False
        f.write(']' if first else f'\n{indent}]')
    else:
        f.write(json.dumps(value, default=_builtin))


def _builtin(value):
    """numpy scalars and arrays as JSON values."""
    if hasattr(value, 'tolist'):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON serializable')


class _TextSink:
    """Buffered UTF-8 text over a binary file."""

    def __init__(self, raw) -> None:
        self.raw, self.parts, self.size = raw, [], 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.raw.write(''.join(self.parts).encode('utf-8'))
        self.parts, self.size = [], 0


def load_json(path: str, what: str):
    """Read a JSON file of the pool state with an error that says what to do
    when it is damaged."""
    try:
        return json.loads(read_capped(path, MAX_JSON_MB * 2**20))
    except (OSError, ValueError) as err:
        raise WorkDirError(
            f'cannot read {what} {path!r} ({err}). The file is missing or '
            f'corrupt: restore it from a backup, or delete its round folder '
            f'(and the ones after it) to go back to the round before (the '
            f'labels that round added are then queried again).') from err


class RoundStore:
    """The ``rounds/`` folder of an experiment.

    Args:
        root (str): The folder, usually ``{work_dir}/rounds``.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    @property
    def mask_dir(self) -> str:
        """Where the revealed-pixel masks are exported for training
        (``LoadRevealedAnnotations``): see :func:`revealed_mask_dir`."""
        return revealed_mask_dir(self.root)

    def round_dir(self, round_idx: int) -> str:
        return osp.join(self.root, f'round_{round_idx:02d}')

    def rounds(self) -> List[int]:
        """The finished rounds on disk, in order."""
        if not osp.isdir(self.root):
            return []
        found = (ROUND_DIR.match(name) for name in os.listdir(self.root))
        return sorted(int(m.group(1)) for m in found if m)

    def latest_round(self) -> int:
        rounds = self.rounds()
        return rounds[-1] if rounds else -1

    def save_round(self,
                   state: PoolState,
                   scores: Optional[Dict[int, float]] = None,
                   info: Optional[Dict] = None,
                   writers: Optional[Dict[str, Callable[[str],
                                                        None]]] = None,
                   random_states: Optional[List[Dict]] = None) -> str:
        """Persist ``state`` as its latest round.

        Args:
            state (PoolState): The state right after the round was added.
            scores (dict[int, float], optional): The acquisition score of
                every candidate scored this round, by pool position.
            info (dict, optional): Facts about the round (strategy, time
                spent scoring, ...), kept in ``queried.json``.
            writers (dict, optional): The unit kind's own files of the
                round (``revealed.npz``, ``regions.json``), by name.
            random_states (list[dict], optional): The random states of
                every rank after the query (``random_states.pth``), for
                resume (:meth:`load_random_states`).

        Returns:
            str: The round folder.
        """
        scores = scores or {}
        names = state.item_names

        def item(index: int) -> Dict:
            row = dict(index=int(index), name=names[index])
            if index in scores:
                row['score'] = float(scores[index])
            return row

        files = {
            'state.json':
            lambda path: dump_json_atomic(state.state_dict(), path),
            'labeled.json':
            lambda path: dump_json_atomic(
                dict(
                    round=state.round,
                    num_labeled=state.num_labeled,
                    pool_size=state.pool_size,
                    items=[
                        dict(
                            index=int(i),
                            name=names[i],
                            round=int(state.labeled_round[i]))
                        for i in state.labeled_indices()
                    ]), path),
            'queried.json':
            lambda path: dump_json_atomic(
                dict(
                    round=state.round,
                    **(info or {}),
                    items=[item(i) for i in state.queried_in(state.round)]),
                path),
            'scores.json':
            lambda path: dump_json_atomic(
                dict(
                    round=state.round,
                    items=[item(i) for i in sorted(scores)]), path),
        }
        files.update(writers or {})
        if random_states is not None:
            files[RANDOM_STATES] = partial(torch.save, random_states)
        return self._write_folder(self.round_dir(state.round), files)

    def read_queried(self, round_idx: int) -> Dict:
        """A round's ``queried.json``, with the ``queried_classes`` of its
        ``classes.json`` when counted (segmentation rounds)."""
        folder = self.round_dir(round_idx)
        queried = load_json(osp.join(folder, 'queried.json'), 'queried')
        if osp.exists(osp.join(folder, CLASSES_FILE)):
            queried.update(
                load_json(osp.join(folder, CLASSES_FILE), 'classes'))
        return queried

    def read_scores(self, round_idx: int) -> List[float]:
        """The scores of a round's ``scores.json``, in pool order."""
        return [
            item['score'] for item in load_json(
                osp.join(self.round_dir(round_idx), 'scores.json'),
                'scores')['items']
        ]

    def read_reveals(self, round_idx: int) -> List[Tuple[int, Reveal]]:
        """What a round of a pixel-labeled pool revealed
        (``revealed.npz``, :func:`~mmsaal.pool.load_reveals`)."""
        return load_reveals(
            osp.join(self.round_dir(round_idx), REVEALED_FILE))

    def write_classes(self, round_idx: int, classes: Dict[str, int]) -> None:
        """A finished round's ``classes.json``: the labeled pixels per
        class it queried, counted after the round was written."""
        dump_json_atomic(dict(queried_classes=classes),
                         osp.join(self.round_dir(round_idx), CLASSES_FILE))

    def _write_folder(self, final: str,
                      files: Dict[str, Callable[[str], None]]) -> str:
        """Assemble ``final`` under a temporary name, then rename it."""
        if osp.exists(final):
            raise FileExistsError(
                f'{final} exists: a finished round or query is never '
                f'rewritten')
        os.makedirs(self.root, exist_ok=True)
        self._remove_incomplete()
        tmp = osp.join(self.root, TMP_PREFIX + osp.basename(final))
        os.makedirs(tmp)
        for name, write in files.items():
            write(osp.join(tmp, name))
        os.rename(tmp, final)
        _fsync_dir(self.root)
        return final

    # ----------------------------------------------- queries awaiting labels
    def query_dir(self, round_idx: int) -> str:
        return osp.join(self.root, f'query_{round_idx:02d}')

    def save_query(self, round_idx: int,
                   files: Dict[str, Callable[[str], None]]) -> str:
        """Persist a query that waits for a person's labels (atomically)."""
        return self._write_folder(self.query_dir(round_idx), files)

    def load_query(self, round_idx: int) -> Optional[Dict]:
        """The selection of a query folder, or None when there is none."""
        path = osp.join(self.query_dir(round_idx), 'selection.json')
        return load_json(path, 'the query') if osp.exists(path) else None

    def read_query_units(self, round_idx: int) -> Optional[Dict[int, Dict]]:
        """The queried units of a waiting region or pixel query
        (``units.npz``), or None for a query of whole images."""
        # query_files writes through this module's atomic helpers.
        from .query_files import QUERY_UNITS_FILE, load_query_units
        path = osp.join(self.query_dir(round_idx), QUERY_UNITS_FILE)
        return load_query_units(path) if osp.exists(path) else None

    def pending_query(self) -> Optional[int]:
        """The round of the query that waits for labels (its round folder
        does not exist yet), or None."""
        if not osp.isdir(self.root):
            return None
        found = (QUERY_DIR.match(name) for name in os.listdir(self.root))
        waiting = [
            int(m.group(1)) for m in found
            if m and not osp.exists(self.round_dir(int(m.group(1))))
        ]
        return max(waiting) if waiting else None

    def remove_query(self, round_idx: int) -> None:
        """Drop a query folder once its round is written."""
        if osp.isdir(self.query_dir(round_idx)):
            shutil.rmtree(self.query_dir(round_idx))

    def run_id(self) -> Optional[str]:
        """The id of the run whose rounds these are (None for rounds of an
        earlier version, which wrote none)."""
        path = osp.join(self.root, RUN_FILE)
        if not osp.exists(path):
            return None
        run = load_json(path, 'the run id')
        if not isinstance(run, dict) or not isinstance(run.get('id'), str):
            raise WorkDirError(
                f'{path} is damaged: it holds no run id. Restore it from a '
                f'backup, or start the run again in a new --work-dir (the '
                f'checkpoints are checked against this id).')
        return run['id']

    def start_run(self, config: Optional[str] = None) -> str:
        """Give a new run its id (at its first start), and keep the path
        of the config it started with, for the commands the tools print."""
        run = uuid.uuid4().hex
        os.makedirs(self.root, exist_ok=True)
        record = dict(id=run)
        if config:
            record['config'] = osp.abspath(config)
        dump_json_atomic(record, osp.join(self.root, RUN_FILE))
        return run

    def run_config(self) -> Optional[str]:
        """The path of the config the run started with, as ``run.json``
        keeps it (None when it keeps none)."""
        path = osp.join(self.root, RUN_FILE)
        try:
            run = load_json(path, 'the run record')
        except WorkDirError:
            return None
        config = run.get('config') if isinstance(run, dict) else None
        return config if isinstance(config, str) else None

    def load_latest(self, state: PoolState) -> int:
        """Load the latest finished round into ``state``; for a
        pixel-labeled pool, replay every round's ``revealed.npz`` too. The
        rounds must run from 0 without a gap, and the latest one's
        ``labeled.json`` must list the labeled set of its ``state.json``.

        Returns:
            int: The round loaded, or -1 when there is none.

        Raises:
            WorkDirError: A round folder is missing or damaged, naming it
                and the fix.
        """
        rounds = self.rounds()
        latest = rounds[-1] if rounds else -1
        gap = sorted(set(range(latest + 1)) - set(rounds))
        if gap:
            raise WorkDirError(
                f'{self.round_dir(gap[0])} is missing, though {self.root} '
                f'holds later rounds ({rounds}). Restore it, or delete the '
                f'rounds after round {gap[0] - 1} '
                f'({", ".join(osp.basename(self.round_dir(r)) for r in rounds if r > gap[0])}) '
                f'to query again from round {gap[0]}.')
        if latest >= 0:
            path = osp.join(self.round_dir(latest), 'state.json')
            saved = load_json(path, 'the pool state')
            try:
                state.load_state_dict(saved)
            except (ValueError, KeyError, TypeError) as err:
                raise WorkDirError(f'{path}: {err}') from err
            if state.round != latest:
                raise WorkDirError(
                    f'{path} holds round {state.round}, not {latest}: the '
                    f'round folders were renamed or mixed up by hand.')
            self._check_labeled(state, latest)
            if state.revealed is not None:
                for round_idx in range(latest + 1):
                    state.revealed.load_round(
                        osp.join(self.round_dir(round_idx), REVEALED_FILE),
                        round_idx, state.pool_size)
                state.check_revealed(self.root)
        return latest

    def _check_labeled(self, state: PoolState, round_idx: int) -> None:
        """``labeled.json`` of a round lists what its ``state.json`` labels.
        """
        path = osp.join(self.round_dir(round_idx), 'labeled.json')
        listed = load_json(path, 'the labeled set')
        try:
            items = [(int(item['index']), item['name'], int(item['round']))
                     for item in listed['items']]
        except (KeyError, TypeError, ValueError) as err:
            raise WorkDirError(
                f'{path} is damaged ({type(err).__name__}: {err}). Restore '
                f'it, or delete its round folder (and the ones after it) to '
                f'go back to the round before.') from err
        expected = [(int(i), state.item_names[i], int(state.labeled_round[i]))
                    for i in state.labeled_indices()]
        if items != expected:
            raise WorkDirError(
                f'{path} lists {len(items)} labeled items, and the state.json '
                f'beside it labels {len(expected)} (or others): one of them '
                f'was edited or damaged. Restore the round folder, or delete '
                f'it (and the ones after it) to go back to the round before.')

    def load_random_states(self, round_idx: int) -> Optional[List[Dict]]:
        """The random states a round was written with (one per rank), or
        None for a round written without them."""
        path = osp.join(self.round_dir(round_idx), RANDOM_STATES)
        if not osp.exists(path):
            return None
        return load_checkpoint_file(path, 'the random states')

    def write_metrics(self, round_idx: int, metrics: Dict) -> bool:
        """Record the validation metrics of the model trained on a round,
        unless they are there already from the same or a later epoch: a
        resumed run validates again, and a finished round is never
        rewritten. Returns whether it wrote them."""
        path = osp.join(self.round_dir(round_idx), 'metrics.json')
        if osp.exists(path):
            try:
                with open(path, encoding='utf-8') as f:
                    written = json.load(f).get('epoch', -1)
            except (OSError, ValueError, AttributeError):
                written = -1  # damaged: write it again
            if written >= metrics.get('epoch', 0):
                return False
        dump_json_atomic(metrics, path)
        return True

    def read_metrics(self, round_idx: int) -> Dict:
        path = osp.join(self.round_dir(round_idx), 'metrics.json')
        return load_json(path, 'metrics') if osp.exists(path) else {}

    def _remove_incomplete(self) -> None:
        for name in os.listdir(self.root):
            if name.startswith(TMP_PREFIX):
                path = osp.join(self.root, name)
                if osp.islink(path) or not osp.isdir(path):
                    os.unlink(path)  # the link alone, never what it names
                else:
                    shutil.rmtree(path)


def revealed_mask_dir(state_root: str) -> str:
    """The folder of the revealed-pixel masks of a run whose round folders
    are in ``state_root`` (``{work_dir}/{state_dir}``): one PNG per image,
    named by its file stem."""
    return osp.join(state_root, MASK_DIR)


def read_initial_file(path: str, item_names: Sequence[str]) -> List[int]:
    """Read a user's initial labeled set.

    Args:
        path (str): A JSON list, or a text file with one entry a line; each
            entry is a pool position (int) or an item name (its image path
            relative to the data root, or the file's stem).
        item_names (Sequence[str]): The pool's item names.

    Returns:
        list[int]: Distinct pool positions.
    """
    where = f'active_learning.initial_labeled_file {path!r}'
    try:
        text = read_capped(path, MAX_JSON_MB * 2**20).decode('utf-8')
    except (OSError, ValueError) as err:
        raise FieldError(f'{where} cannot be read ({err}): point the field '
                         f'to a JSON list or a text file of pool items, or '
                         f'drop it.') from None
    try:
        entries = json.loads(text)
    except ValueError:
        entries = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(entries, dict):
        rows = entries.get('items', [])
        if not isinstance(rows, list) or not all(
                isinstance(r, dict) and 'index' in r for r in rows):
            raise FieldError(f'{where}: its "items" need an "index" each, '
                             f'as labeled.json has them')
        entries = [row['index'] for row in rows]
    if not isinstance(entries, list):
        raise FieldError(f'{where} holds no list of pool items')
    by_name = {}
    for i, name in enumerate(item_names):
        by_name[name] = i
        by_name.setdefault(osp.splitext(osp.basename(name))[0], i)
    positions = []
    for entry in entries:
        if isinstance(entry, int) or (isinstance(entry, str)
                                      and entry.isdigit()
                                      and entry not in by_name):
            index = int(entry)
            if not 0 <= index < len(item_names):
                raise FieldError(
                    f'{where}: position {index} is '
                    f'outside the pool of {len(item_names)} items')
        elif isinstance(entry, str) and entry in by_name:
            index = by_name[entry]
        else:
            raise FieldError(
                f'{where}: {entry!r:.80} names no item of '
                f'the pool (use pool positions or image paths as in '
                f'labeled.json)')
        positions.append(index)
    if len(set(positions)) != len(positions):
        raise FieldError(f'{where} lists an item '
                         f'twice; each item must appear once')
    return positions


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
