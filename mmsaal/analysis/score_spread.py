# Copyright (c) mmsaal contributors. All rights reserved.
"""How far apart a strategy's scores are in each query round: the check
that a score has not saturated, which a benchmark prints beside its
curves."""
from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np

from .curves import query_strategies, report_rows, sampler_class


def round_score_stats(work_dir: str) -> Dict[int, Dict[str, float]]:
    """A run's ``score_mean`` and ``score_std`` per query round, from its
    ``report.json``; rounds without scores (the initial set, a random
    query) and a cold start's rounds (another sampler's scores) are left
    out."""
    rows = report_rows(work_dir)
    own = (query_strategies(rows) or [None])[-1]
    return {
        r['round']: dict(mean=r['score_mean'], std=r['score_std'])
        for r in rows if r.get('score_mean') is not None and (
            own is None or sampler_class(r.get('strategy', '')) == own)
    }


def score_spread(curves: Sequence[Dict]) -> Dict[str, List[Dict]]:
    """Per strategy (as :func:`~mmsaal.analysis.summarize_curves` names
    them) and query round: the mean over seeds of the scores' mean, their
    standard deviation, and the relative spread std / mean."""
    runs: Dict[str, Dict[int, List]] = defaultdict(lambda: defaultdict(list))
    for curve in curves:
        for round_idx, stats in round_score_stats(curve['work_dir']).items():
            runs[curve['strategy']][round_idx].append(stats)
    spread = {}
    for strategy, rounds in runs.items():
        spread[strategy] = []
        for round_idx, stats in sorted(rounds.items()):
            mean = float(np.mean([s['mean'] for s in stats]))
            std = float(np.mean([s['std'] for s in stats]))
            spread[strategy].append(
                dict(round=round_idx, mean=mean, std=std,
                     relative=std / abs(mean) if mean else float('inf')))
    return spread


def format_score_spread(spread: Dict[str, List[Dict]]) -> str:
    """A table: one row per strategy, ``mean / std (std/mean)`` per
    round."""
    rounds = sorted({r['round'] for rows in spread.values() for r in rows})
    width = max([len('strategy')] + [len(s) for s in spread]) + 2
    lines = ['scores per query round, mean / std (std/mean), over seeds:',
             f'{"strategy":<{width}}' +
             ''.join(f'{"round " + str(i):>28}' for i in rounds)]
    for strategy, rows in spread.items():
        by_round = {r['round']: r for r in rows}
        cells = []
        for i in rounds:
            r = by_round.get(i)
            cells.append(f'{r["mean"]:.4g} / {r["std"]:.3g} '
                         f'({r["relative"]:.2f})' if r else '-')
        lines.append(f'{strategy:<{width}}' +
                     ''.join(f'{c:>28}' for c in cells))
    return '\n'.join(lines)
