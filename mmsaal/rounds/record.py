# Copyright (c) mmsaal contributors. All rights reserved.
"""Step 4 of a round, recording: the round files, the metrics of the model
trained on them, and the report a person reads between rounds
(``report.md``, with the same rows in ``report.json`` and ``report.csv``).
"""
import logging
import os.path as osp
import threading
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from mmsaal.pool import (IGNORE_INDEX, PoolState, Reveal, RoundStore,
                         read_report, write_report)
from mmsaal.tasks import task_of
from mmsaal.utils.threads import in_threads
from .units import ImageUnits, Query


def class_histogram(dataset, indices: Sequence[int]) -> Dict[str, int]:
    """Object counts per class over ``indices`` (items per class for a
    classification dataset).

    Reads the annotations the dataset already parsed (each item's task's
    ``object_classes``), so it costs no image read. Empty when the items
    name no class (segmentation counts its label maps instead).
    """
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes', ())
    counts: Counter = Counter()
    for index in indices:
        info = dataset.get_data_info(int(index))
        counts.update(task_of(info).object_classes(info, classes))
    return dict(sorted(counts.items()))


def empty_images(dataset, indices: Sequence[int]) -> Optional[int]:
    """How many of ``indices`` hold no object: a detection query spent on
    an image with nothing to box. None where that does not apply (e.g.
    segmentation)."""
    infos = [dataset.get_data_info(int(index)) for index in indices]
    empty = [task_of(info).is_empty(info) for info in infos]
    if all(flag is None for flag in empty):
        return None
    return sum(bool(flag) for flag in empty)


def pixel_class_histogram(dataset,
                          reveals: Iterable[Tuple[int, Optional[Reveal]]],
                          ignore_index: int = IGNORE_INDEX) -> Dict[str, int]:
    """Labeled pixels per class in ``reveals`` (``(pool position,
    reveal)`` pairs, None for the whole image), read from the items' label
    maps: what a segmentation round queried. Empty when the items have no
    label map. The maps are decoded in threads."""
    import cv2
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes', ())
    reveals = list(reveals)

    def counts(pair) -> Optional[np.ndarray]:
        index, reveal = pair
        info = dataset.get_data_info(int(index))
        path = task_of(info).label_map(info)
        if not path or not osp.exists(path):
            return None
        labels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        labels = labels.reshape(-1) if reveal is None else reveal.values(
            labels)
        return np.bincount(labels[labels != ignore_index].astype(np.int64))

    found = [c for c in in_threads(counts, reveals) if c is not None]
    total = np.zeros(max([len(classes), 1] + [len(c) for c in found]),
                     np.int64)
    for part in found:
        total[:len(part)] += part
    return {(classes[i] if i < len(classes) else str(i)): int(c)
            for i, c in enumerate(total) if c}


def is_segmentation(dataset) -> bool:
    """Whether a pool's queried classes are counted from label maps (its
    first item's task says)."""
    if not len(dataset):
        return False
    info = dataset.get_data_info(0)
    return task_of(info).counts_pixels


def score_summary(scores: Sequence[float]) -> Dict[str, float]:
    """``score_mean/std/min/max`` of a round's scores (in pool order)."""
    if not len(scores):
        return {}
    return dict(
        score_mean=float(np.mean(scores)),
        score_std=float(np.std(scores)),
        score_min=float(np.min(scores)),
        score_max=float(np.max(scores)))


#: The report columns a round's files fix once it is written (the rest
#: change with its metrics, or come from the state).
FIXED = ('scoring_seconds', 'strategy', 'pixel_fraction', 'score_mean',
         'score_std', 'score_min', 'score_max', 'queried_classes',
         'queried_empty', 'ties')


def fixed_columns(queried: Dict, scores: Sequence[float],
                  dataset=None) -> Dict:
    """The :data:`FIXED` columns of a round, from its ``queried.json`` and
    the scores of ``scores.json`` (in pool order)."""
    row = dict(
        scoring_seconds=queried.get('scoring_seconds'),
        strategy=queried.get('strategy'))
    if 'labeled_pixel_fraction' in queried:
        row['pixel_fraction'] = queried['labeled_pixel_fraction']
    if queried.get('ties'):
        row['ties'] = queried['ties']
    row.update(score_summary(scores))
    if 'queried_classes' in queried:
        row['queried_classes'] = queried['queried_classes']
    elif dataset is not None and is_segmentation(dataset):
        row['queried_classes'] = None  # not counted (yet): classes.json
    elif dataset is not None:
        indices = [item['index'] for item in queried['items']]
        row['queried_classes'] = class_histogram(dataset, indices)
        empty = empty_images(dataset, indices)
        if empty is not None:
            row['queried_empty'] = empty
    return row


def read_fixed_columns(store: RoundStore, round_idx: int,
                       dataset=None) -> Dict:
    """:func:`fixed_columns` of a round written earlier, from its files."""
    return fixed_columns(store.read_queried(round_idx),
                         store.read_scores(round_idx), dataset)


def round_rows(store: RoundStore, state: PoolState, dataset=None,
               fixed: Optional[Dict[int, Dict]] = None) -> List[Dict]:
    """One row per finished round, from the files of ``store``; the
    columns a round fixed once written come from ``fixed`` where it has
    them (filled in with what it lacks)."""
    fixed = {} if fixed is None else fixed
    rows = []
    for summary in state.summary():
        round_idx = summary['round']
        if round_idx not in fixed:
            fixed[round_idx] = read_fixed_columns(store, round_idx, dataset)
        record = store.read_metrics(round_idx)
        metrics = record.get('metrics', {})
        main = next((k for k in metrics if k.endswith(('mAP', 'mIoU'))),
                    next(iter(metrics), None))
        row = dict(
            round=round_idx,
            labeled=summary['labeled'],
            fraction=round(summary['labeled'] / state.pool_size, 4),
            added=summary['added'],
            metric=None if main is None else metrics[main],
            metric_name=main,
            metrics=metrics,
            train_seconds=record.get('train_seconds'))
        columns = fixed[round_idx]
        row.update(
            scoring_seconds=columns.get('scoring_seconds'),
            strategy=columns.get('strategy'))
        row.update({k: columns[k] for k in FIXED[2:] if k in columns})
        rows.append(row)
    return rows


class RoundRecorder:
    """What a run leaves on disk: a folder per round, the metrics of each
    round's model, the report. Call its writers on the main process only.

    Args:
        store (RoundStore): The round folders.
        state (PoolState): The labeled state.
        units (ImageUnits): What a query labels (its extra round files).
        pool: The train pool dataset (class histograms).
        work_dir (str): Where the report goes.
        title (str): The report's title.
    """

    def __init__(self, store: RoundStore, state: PoolState,
                 units: ImageUnits, pool, work_dir: str, title: str) -> None:
        self.store = store
        self.state = state
        self.units = units
        self.pool = pool
        self.work_dir = work_dir
        self.title = title
        self.segmentation = is_segmentation(pool)
        # The report's FIXED columns per round: computed once, when the
        # round is written, or read back from report.json on a resume.
        self._fixed: Optional[Dict[int, Dict]] = None
        # The classes of segmentation rounds, counted in this thread
        # while the next round trains; the lock keeps the report whole.
        self._counting: Optional[threading.Thread] = None
        self._lock = threading.RLock()

    def save_round(self, query: Query, info: Dict,
                   generators: Optional[List[Dict]] = None,
                   initial: bool = False) -> None:
        """Write the round the state just added (labeled set, query,
        scores, revealed pixels), drop its query folder, export what
        training reads and update the report.

        Args:
            query (Query): What the round labeled.
            info (dict): Facts about the round, kept in ``queried.json``.
            generators (list[dict], optional): The random states of every
                rank after the query (``random_states.pth``), for resume.
            initial (bool): Round 0: no class histogram of what it revealed
                (segmentation pools), and every mask is exported. Defaults
                to False.
        """
        round_idx = self.state.round
        writers = self.units.round_files(round_idx, query,
                                         self.state.item_names)
        self.store.save_round(
            self.state, scores=query.scores, info=info, writers=writers,
            random_states=generators)
        self.store.remove_query(round_idx)
        self.units.export(self.state, None if initial else query.indices)
        scores = query.scores or {}
        with self._lock:
            self.fixed()[round_idx] = fixed_columns(
                dict(info, items=[dict(index=int(i))
                                  for i in self.state.queried_in(round_idx)]),
                [scores[i] for i in sorted(scores)], self.pool)
        if not initial and self.segmentation:
            self.count_classes({round_idx: list(self._revealed(query))})
        self.report()

    def count_classes(self, reveals: Dict[int, list]) -> None:
        """Count the labeled pixels per class that each round of
        ``reveals`` (round: its ``(pool position, reveal)`` pairs) revealed,
        in a thread: it decodes every queried label map, so it runs while
        the next round trains, not before. Each round's count goes to its
        ``classes.json`` and the report's ``queried_classes``; a count a
        kill cut short is made again on resume
        (:meth:`count_missing_classes`). One count runs at a time."""
        self.wait()

        def count() -> None:
            for round_idx, pairs in reveals.items():
                try:
                    classes = pixel_class_histogram(self.pool, pairs)
                    self.store.write_classes(round_idx, classes)
                except Exception as error:  # the run goes on without them
                    print_log(
                        f'The classes round {round_idx} queried were not '
                        f'counted ({type(error).__name__}: {error}); its '
                        f'report row leaves them out.', logger='current',
                        level=logging.WARNING)
                    continue
                with self._lock:
                    self.fixed().setdefault(
                        round_idx, {})['queried_classes'] = classes
                    self.report()

        self._counting = threading.Thread(
            target=count, name='mmsaal-queried-classes', daemon=True)
        self._counting.start()

    def count_missing_classes(self) -> List[int]:
        """On resume: count the classes of the segmentation rounds a kill
        left uncounted (no ``classes.json``). Returns those rounds."""
        if not self.segmentation:
            return []
        missing = {}
        for round_idx in self.store.rounds():
            # Earlier versions kept them in queried.json.
            if round_idx == 0 or \
                    'queried_classes' in self.store.read_queried(round_idx):
                continue
            if self.units.pixels is not None:
                try:
                    missing[round_idx] = self.store.read_reveals(round_idx)
                except RuntimeError as error:  # a report column only
                    print_log(f'{error}; round {round_idx} is reported '
                              f'without its classes.', logger='current',
                              level=logging.WARNING)
            else:
                missing[round_idx] = [
                    (int(i), None) for i in self.state.queried_in(round_idx)]
        if missing:
            self.count_classes(missing)
        return sorted(missing)

    def wait(self) -> None:
        """Return once the classes being counted are (see
        :meth:`count_classes`)."""
        if self._counting is not None:
            self._counting.join()
            self._counting = None

    def _revealed(self, query: Query
                  ) -> Iterable[Tuple[int, Optional[Reveal]]]:
        """What a segmentation round revealed: its units, or whole
        images."""
        if self.units.pixels is not None:
            return self.units.reveals(query)
        return ((int(i), None) for i in query.indices)

    def fixed(self) -> Dict[int, Dict]:
        """The FIXED report columns per round, seeded from ``report.json``
        (the rounds it lists that exist), the rest read from the round
        files when first asked for."""
        if self._fixed is None:
            self._fixed = {}
            rounds = set(self.store.rounds())
            try:
                for row in read_report(self.work_dir):
                    # A round whose classes were not counted yet when the
                    # report was written reads them from its files.
                    if row['round'] in rounds and not (
                            self.segmentation and row['round'] > 0
                            and row.get('queried_classes') is None):
                        self._fixed[row['round']] = {
                            k: row[k] for k in FIXED if k in row}
            except (OSError, ValueError, KeyError, TypeError):
                self._fixed = {}
        return self._fixed

    def save_metrics(self, epoch: int, metrics: Dict,
                     train_seconds: float) -> Dict:
        """Record the validation metrics of the current round's model.

        Returns:
            dict: The scalars for the visualizer backends.
        """
        state = self.state
        record = dict(
            round=state.round,
            epoch=epoch,
            num_labeled=state.num_labeled,
            labeled_fraction=state.num_labeled / state.pool_size,
            train_seconds=round(train_seconds, 3),
            **self.units.progress(state),
            metrics={k: _to_builtin(v)
                     for k, v in metrics.items()})
        if not self.store.write_metrics(state.round, record):
            print_log(
                f'Round {state.round} keeps the metrics.json it has (from '
                f'epoch {self.store.read_metrics(state.round).get("epoch")}): '
                f'a finished round is never rewritten.', logger='current')
        self.report()
        scalars = {
            'active_learning/labeled': state.num_labeled,
            'active_learning/labeled_fraction': record['labeled_fraction'],
        }
        if 'labeled_pixel_fraction' in record:
            scalars['active_learning/labeled_pixel_fraction'] = record[
                'labeled_pixel_fraction']
        scalars.update({
            f'active_learning/{k}': v
            for k, v in record['metrics'].items()
            if isinstance(v, (int, float))
        })
        return scalars

    def report(self) -> List[Dict]:
        """Write ``report.{md,json,csv}``; returns its rows."""
        with self._lock:
            rows = round_rows(self.store, self.state, self.pool,
                              self.fixed())
            write_report(self.work_dir, rows, title=self.title)
        return rows


def summary_table(rows: List[Dict]) -> str:
    """A text table of report rows: labeled count and metrics (and the
    fraction of pixels labeled, for region/pixel queries)."""
    pixels = any('pixel_fraction' in row for row in rows)
    header = ['round', 'labeled', 'fraction'] + (
        ['pixel fraction'] if pixels else []) + ['metrics']
    cells = [[str(row['round']),
              str(row['labeled']), f'{row["fraction"]:.3f}'] +
             ([f'{row.get("pixel_fraction", 0.0):.4f}'] if pixels else []) +
             [
                 ', '.join(f'{k}: {v:.4f}'
                           for k, v in row['metrics'].items()
                           if isinstance(v, float))
             ] for row in rows]
    widths = [
        max(len(r[i]) for r in cells + [header]) for i in range(len(header))
    ]
    lines = [' | '.join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append('-+-'.join('-' * w for w in widths))
    lines += [' | '.join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return 'Active learning summary\n' + '\n'.join(lines)


def _to_builtin(value):
    """A numpy or torch scalar as a Python number (for JSON)."""
    return value.item() if hasattr(value, 'item') else value
