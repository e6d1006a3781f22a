# Copyright (c) mmsaal contributors. All rights reserved.
"""Learning curves (metric vs labeled fraction) of finished work dirs."""
import csv
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np


def report_rows(work_dir: str) -> List[Dict]:
    """The rows of a run's ``report.json``, one per finished round."""
    path = osp.join(work_dir, 'report.json')
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{work_dir} has no report.json: it is not the work dir of an '
            f'active-learning run, or its first round has not finished.')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def load_curve(work_dir: str) -> Dict:
    """The curve of one run, from its ``report.json``.

    Returns:
        dict: ``work_dir``, ``strategy`` (the pool sampler's class),
        ``seed``, ``metric_name``, and per round ``labeled``, ``fraction``
        (of the pool's pixels for region/pixel queries), ``metric``.
    """
    rows = [r for r in report_rows(work_dir) if r.get('metric') is not None]
    if not rows:
        raise ValueError(f'{work_dir}: no round has a validation metric yet')
    state_path = osp.join(work_dir, 'rounds', 'round_00', 'state.json')
    with open(state_path, encoding='utf-8') as f:
        seed = json.load(f)['seed']
    return dict(
        work_dir=work_dir,
        strategy=run_strategy(rows),
        seed=seed,
        metric_name=rows[0]['metric_name'],
        labeled=[r['labeled'] for r in rows],
        # Region/pixel queries: the labeled share is in pixels.
        fraction=[r.get('pixel_fraction', r['fraction']) for r in rows],
        metric=[r['metric'] for r in rows])


def sampler_class(strategy: str) -> str:
    """The class of a round's recorded strategy, ``SAALSampler(rho=...)``
    -> ``SAALSampler``."""
    return strategy.split('(')[0]


def query_strategies(rows: Sequence[Dict]) -> List[str]:
    """The sampler class of each query round (round 0 left out)."""
    return [
        sampler_class(r['strategy']) for r in rows
        if r['round'] > 0 and r.get('strategy')
    ]


def run_strategy(rows: Sequence[Dict]) -> str:
    """The pool sampler's class, from the last query round; a run whose
    first rounds drew with another class (``cold_start_rounds``) is named
    with that field, ``SAALSampler:cold_start_rounds=1``."""
    names = query_strategies(rows)
    if not names:
        return 'initial only'
    cold = next(i for i, name in enumerate(names) if name == names[-1])
    return names[-1] + (f':cold_start_rounds={cold}' if cold else '')


def area_under_curve(fraction: Sequence[float],
                     metric: Sequence[float]) -> float:
    """Trapezoid area under metric vs labeled fraction, divided by the
    fraction span: the mean metric over the budget (0 for a single point).
    """
    fraction, metric = np.asarray(fraction), np.asarray(metric)
    if len(fraction) < 2 or fraction[-1] == fraction[0]:
        return float(metric[-1]) if len(metric) else 0.0
    area = np.sum((fraction[1:] - fraction[:-1]) *
                  (metric[1:] + metric[:-1]) / 2)
    return float(area / (fraction[-1] - fraction[0]))


def group_by_strategy(curves: Sequence[Dict]) -> Dict[str, List[Dict]]:
    groups = defaultdict(list)
    for curve in curves:
        groups[curve['strategy']].append(curve)
    return dict(groups)


def summarize_curves(curves: Sequence[Dict]) -> List[Dict]:
    """Per strategy: seeds, area under the curve and final metric (mean and
    standard deviation over seeds)."""
    rows = []
    for strategy, runs in group_by_strategy(curves).items():
        aucs = [area_under_curve(r['fraction'], r['metric']) for r in runs]
        finals = [r['metric'][-1] for r in runs]
        rows.append(
            dict(
                strategy=strategy,
                seeds=sorted(r['seed'] for r in runs),
                auc_mean=float(np.mean(aucs)),
                auc_std=float(np.std(aucs)),
                final_mean=float(np.mean(finals)),
                final_std=float(np.std(finals))))
    return sorted(rows, key=lambda r: -r['auc_mean'])


def format_summary(rows: Sequence[Dict], metric_name: str) -> str:
    width = max([24] + [len(r['strategy']) + 2 for r in rows])
    lines = [
        f'{"strategy":<{width}}{"seeds":>8}{"AULC " + metric_name:>28}'
        f'{"final":>20}'
    ]
    for r in rows:
        lines.append(f'{r["strategy"]:<{width}}{len(r["seeds"]):>8}'
                     f'{r["auc_mean"]:>20.4f} ± {r["auc_std"]:.4f}'
                     f'{r["final_mean"]:>12.4f} ± {r["final_std"]:.4f}')
    return '\n'.join(lines)


def write_curves_csv(curves: Sequence[Dict], path: str) -> None:
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['strategy', 'seed', 'round', 'labeled', 'fraction',
                         'metric', 'work_dir'])
        for c in curves:
            for i, (n, frac, m) in enumerate(
                    zip(c['labeled'], c['fraction'], c['metric'])):
                writer.writerow(
                    [c['strategy'], c['seed'], i, n, frac, m, c['work_dir']])


def plot_curves(curves: Sequence[Dict], path: str) -> None:
    """One line per strategy (mean over seeds), shaded ± one standard
    deviation, to a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for strategy, runs in sorted(group_by_strategy(curves).items()):
        length = min(len(r['fraction']) for r in runs)
        fraction = np.asarray(runs[0]['fraction'][:length]) * 100
        metric = np.asarray([r['metric'][:length] for r in runs])
        mean, std = metric.mean(axis=0), metric.std(axis=0)
        ax.plot(fraction, mean, marker='o', label=f'{strategy} '
                f'(n={len(runs)})')
        if len(runs) > 1:
            ax.fill_between(fraction, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel('labeled (% of the pool)')
    ax.set_ylabel(curves[0]['metric_name'])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
