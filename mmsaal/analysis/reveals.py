# Copyright (c) mmsaal contributors. All rights reserved.
"""What a run revealed: per class for region or pixel runs, and the share
of queried images that held no object for detection runs; what a benchmark
prints beside its curves."""
import glob
import os.path as osp
from collections import Counter
from typing import Dict, List, Sequence

from .curves import report_rows

#: Revealed pixels that carry no class (the dataset's ignore label).
VOID = 'void'


def revealed_classes(work_dir: str) -> Counter:
    """Pixels each class got over a run's query rounds (round 1 on), and
    :data:`VOID` for revealed pixels of no class; empty for runs that
    query whole images."""
    from mmsaal.pool import REVEALED_FILE, load_reveals
    rows = {r['round']: r for r in report_rows(work_dir)}
    counts = Counter()
    for folder in sorted(glob.glob(osp.join(work_dir, 'rounds', 'round_*'))):
        round_idx = int(folder.rsplit('_', 1)[1])
        masks_path = osp.join(folder, REVEALED_FILE)
        if round_idx == 0 or not osp.exists(masks_path):
            continue
        revealed = sum(r.count() for _, r in load_reveals(masks_path))
        classes = rows.get(round_idx, {}).get('queried_classes') or {}
        counts.update(classes)
        counts[VOID] += revealed - sum(classes.values())
    return counts


def reveal_shares(curves: Sequence[Dict]) -> Dict[str, Dict[str, float]]:
    """Per strategy (as :func:`~mmsaal.analysis.summarize_curves` names
    them), each class's percentage of the pixels its runs revealed."""
    totals: Dict[str, Counter] = {}
    for curve in curves:
        totals.setdefault(curve['strategy'], Counter()).update(
            revealed_classes(curve['work_dir']))
    return {
        strategy: {name: 100.0 * n / sum(counts.values())
                   for name, n in sorted(counts.items())}
        for strategy, counts in totals.items() if sum(counts.values())
    }


def format_reveal_shares(shares: Dict[str, Dict[str, float]]) -> str:
    """A table: one row per strategy, one column per class (void last)."""
    names: List[str] = sorted({n for s in shares.values() for n in s} -
                              {VOID}) + [VOID]
    width = max([len('strategy')] + [len(s) for s in shares]) + 2
    lines = ['share of revealed pixels, %, query rounds over seeds:',
             f'{"strategy":<{width}}' + ''.join(f'{n:>11}' for n in names)]
    for strategy, row in shares.items():
        lines.append(f'{strategy:<{width}}' +
                     ''.join(f'{row.get(n, 0.0):>11.1f}' for n in names))
    return '\n'.join(lines)


def empty_query_shares(curves: Sequence[Dict]) -> Dict[str, float]:
    """Per strategy, the percentage of the images its query rounds (round 1
    on) labeled that held no object (``queried_empty`` of the reports:
    detection pools only)."""
    empty: Counter = Counter()
    queried: Counter = Counter()
    for curve in curves:
        rows = [r for r in report_rows(curve['work_dir'])
                if r['round'] > 0 and 'queried_empty' in r]
        empty[curve['strategy']] += sum(r['queried_empty'] for r in rows)
        queried[curve['strategy']] += sum(r['added'] for r in rows)
    return {strategy: 100.0 * empty[strategy] / n
            for strategy, n in queried.items() if n}


def format_empty_query_shares(shares: Dict[str, float]) -> str:
    width = max([len('strategy')] + [len(s) for s in shares]) + 2
    return '\n'.join(
        ['queried images that held no object, %, query rounds over seeds:'] +
        [f'{strategy:<{width}}{share:>6.1f}'
         for strategy, share in shares.items()])
