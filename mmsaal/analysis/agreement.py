# Copyright (c) mmsaal contributors. All rights reserved.
"""How far two scorings of the same items agree: the ranking, and the query
a top-k pick would make."""
import numpy as np

from mmsaal.selection import top_k


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by position)."""
    ranks_a = np.argsort(np.argsort(a, kind='stable'), kind='stable')
    ranks_b = np.argsort(np.argsort(b, kind='stable'), kind='stable')
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """The share of the ``k`` items a top-k query by ``a`` would pick that
    the same query by ``b`` picks too."""
    if k <= 0:
        raise ValueError(f'k must be > 0, got {k}')
    picked_a = set(top_k(np.asarray(a, np.float64), k).tolist())
    picked_b = set(top_k(np.asarray(b, np.float64), k).tolist())
    return len(picked_a & picked_b) / k
