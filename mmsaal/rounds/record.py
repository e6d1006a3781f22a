# Copyright (c) mmsaal contributors. All rights reserved.
"""The round report a person reads between rounds: ``report.md``, with the
same rows in ``report.json`` and ``report.csv``."""
import csv
import io
import os.path as osp
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmsaal.pool import (PoolState, RoundStore, dump_json_atomic,
                         write_text_atomic)
from mmsaal.pool.store import load_json

COLUMNS = ('round', 'labeled', 'fraction', 'pixel_fraction', 'added',
           'metric',
           'train_seconds', 'scoring_seconds', 'score_mean', 'score_std',
           'score_min', 'score_max', 'queried_classes')


def class_histogram(dataset, indices: Sequence[int]) -> Dict[str, int]:
    """Object counts per class over ``indices``.

    Reads the annotations the dataset already parsed (``instances`` with
    ``bbox_label``), so it costs no image read. Empty when the dataset has
    no instance annotations (e.g. segmentation).
    """
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes', ())
    counts: Counter = Counter()
    for index in indices:
        for instance in dataset.get_data_info(int(index)).get(
                'instances', []):
            label = instance.get('bbox_label')
            if label is not None:
                name = classes[label] if label < len(classes) else str(label)
                counts[name] += 1
    return dict(sorted(counts.items()))


def pixel_class_histogram(dataset,
                          masks: Iterable[Tuple[int, Optional[np.ndarray]]],
                          ignore_index: int = 255) -> Dict[str, int]:
    """Labeled pixels per class in ``masks`` (``(pool position, bool mask)``
    pairs, None for the whole image), read from the items' label maps: what
    a segmentation round queried. Empty when the items have no label map."""
    import cv2
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes', ())
    counts = np.zeros(max(len(classes), 1), dtype=np.int64)
    for index, mask in masks:
        path = dataset.get_data_info(int(index)).get('seg_map_path')
        if not path or not osp.exists(path):
            continue
        labels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        labels = labels if mask is None else labels[mask]
        labels = labels[labels != ignore_index].astype(np.int64)
        found = np.bincount(labels, minlength=len(counts))
        if len(found) > len(counts):
            counts = np.concatenate(
                [counts, np.zeros(len(found) - len(counts), np.int64)])
        counts += found
    return {(classes[i] if i < len(classes) else str(i)): int(c)
            for i, c in enumerate(counts) if c}


def round_rows(store: RoundStore, state: PoolState,
               dataset=None) -> List[Dict]:
    """One row per finished round, from the files of ``store``."""
    rows = []
    for summary in state.summary():
        round_idx = summary['round']
        folder = store.round_dir(round_idx)
        queried = load_json(osp.join(folder, 'queried.json'), 'queried')
        scores = [
            item['score'] for item in load_json(
                osp.join(folder, 'scores.json'), 'scores')['items']
        ]
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
            train_seconds=record.get('train_seconds'),
            scoring_seconds=queried.get('scoring_seconds'),
            strategy=queried.get('strategy'))
        if 'labeled_pixel_fraction' in queried:
            row['pixel_fraction'] = queried['labeled_pixel_fraction']
        if scores:
            row.update(
                score_mean=float(np.mean(scores)),
                score_std=float(np.std(scores)),
                score_min=float(np.min(scores)),
                score_max=float(np.max(scores)))
        if 'queried_classes' in queried:
            row['queried_classes'] = queried['queried_classes']
        elif dataset is not None:
            row['queried_classes'] = class_histogram(
                dataset, [item['index'] for item in queried['items']])
        rows.append(row)
    return rows


def _cell(value) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.4g}'
    if isinstance(value, dict):
        return ' '.join(f'{k}:{v}' for k, v in value.items())
    return str(value)


def write_report(work_dir: str, rows: List[Dict],
                 title: Optional[str] = None) -> str:
    """Write ``report.md``, ``report.json`` and ``report.csv`` (atomically).

    Returns:
        str: The path of ``report.md``.
    """
    dump_json_atomic(rows, osp.join(work_dir, 'report.json'))
    # The pixel fraction is for region/pixel queries only.
    columns = [
        c for c in COLUMNS
        if c != 'pixel_fraction' or any(c in row for row in rows)
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_text_atomic(buffer.getvalue(), osp.join(work_dir, 'report.csv'))
    metric = next((r['metric_name'] for r in rows if r.get('metric_name')),
                  'metric')
    lines = [
        f'# {title or "Active learning report"}', '',
        f'Strategy: `{rows[-1].get("strategy") if rows else ""}`', '',
        '| ' + ' | '.join(c if c != 'metric' else metric
                          for c in columns) + ' |',
        '|' + '---|' * len(columns)
    ]
    lines += [
        '| ' + ' | '.join(_cell(row.get(c)) for c in columns) + ' |'
        for row in rows
    ]
    path = osp.join(work_dir, 'report.md')
    write_text_atomic('\n'.join(lines) + '\n', path)
    return path
