# Copyright (c) mmsaal contributors. All rights reserved.
"""The report a person reads between rounds: ``report.md``, with the same
rows in ``report.json`` and ``report.csv`` (one row per round)."""
import csv
import io
import json
import os.path as osp
from typing import Dict, List, Optional

from .store import dump_json_atomic, write_text_atomic

COLUMNS = ('round', 'labeled', 'fraction', 'pixel_fraction', 'added',
           'metric',
           'train_seconds', 'scoring_seconds', 'score_mean', 'score_std',
           'score_min', 'score_max', 'queried_classes', 'queried_empty')
#: Columns only some runs have (region/pixel queries; detection pools).
OPTIONAL_COLUMNS = ('pixel_fraction', 'queried_empty')


def _cell(value) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.4g}'
    if isinstance(value, dict):
        return ' '.join(f'{k}:{v}' for k, v in value.items())
    return str(value)


def strategy_line(rows: List[Dict]) -> str:
    """The report's strategy: the last round's, or, when rounds differ
    (``cold_start_rounds``), each strategy with the rounds it picked."""
    queried = [r for r in rows if r['round'] > 0 and r.get('strategy')]
    runs = []  # [strategy, first round, last round]
    for row in queried:
        if runs and runs[-1][0] == row['strategy']:
            runs[-1][2] = row['round']
        else:
            runs.append([row['strategy'], row['round'], row['round']])
    if len(runs) < 2:
        return f'Strategy: `{rows[-1].get("strategy") if rows else ""}`'
    return 'Strategies: ' + ', '.join(
        f'`{name}` (round {first})' if first == last else
        f'`{name}` (rounds {first}-{last})' for name, first, last in runs)


def write_report(work_dir: str, rows: List[Dict],
                 title: Optional[str] = None) -> str:
    """Write ``report.md``, ``report.json`` and ``report.csv`` (atomically).

    Returns:
        str: The path of ``report.md``.
    """
    dump_json_atomic(rows, osp.join(work_dir, 'report.json'))
    columns = [
        c for c in COLUMNS
        if c not in OPTIONAL_COLUMNS or any(c in row for row in rows)
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
        strategy_line(rows), '',
        '| ' + ' | '.join(c if c != 'metric' else metric
                          for c in columns) + ' |',
        '|' + '---|' * len(columns)
    ]
    lines += [
        '| ' + ' | '.join(_cell(row.get(c)) for c in columns) + ' |'
        for row in rows
    ]
    # Rounds whose scores gave no order (pipeline.tie_note).
    tied = [row for row in rows if row.get('ties')]
    if tied:
        lines += [''] + [f'- Round {row["round"]}: {row["ties"]}.'
                         for row in tied]
    path = osp.join(work_dir, 'report.md')
    write_text_atomic('\n'.join(lines) + '\n', path)
    return path


def read_report(work_dir: str) -> List[Dict]:
    """The rows of ``report.json`` (raises ``OSError`` or ``ValueError``
    when it is missing or damaged)."""
    with open(osp.join(work_dir, 'report.json'), encoding='utf-8') as f:
        return json.load(f)
