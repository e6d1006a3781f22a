# Copyright (c) mmsaal contributors. All rights reserved.
"""Pick a query from a vector of acquisition scores (pure numpy)."""
import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest scores, largest first.

    Ties are broken by position (the earlier item first), so the result does
    not depend on how the scores were sharded or gathered.

    Args:
        scores (np.ndarray): One score per candidate, shape ``(N,)``.
        k (int): How many to pick, ``0 <= k <= N``.

    Returns:
        np.ndarray: ``k`` positions into ``scores``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    _check_k(scores, k)
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[:k]


def kmeans_pp_seeding(scores: np.ndarray, k: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Diverse pick by k-means++ seeding over the scores.

    As the reference's ``*_Diversity`` modes do: the first pick is the
    largest score, each next one is drawn with probability proportional to
    the squared distance to its nearest earlier pick.

    Args:
        scores (np.ndarray): One score (or score vector) per candidate,
            shape ``(N,)`` or ``(N, D)``.
        k (int): How many to pick.
        rng (np.random.Generator): Source of the draws.

    Returns:
        np.ndarray: ``k`` distinct positions into ``scores``.
    """
    points = np.asarray(scores, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    _check_k(points, k)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(top_k(points.sum(axis=1), 1)[0])
    picks = [first]
    nearest = ((points - points[first])**2).sum(axis=1)
    while len(picks) < k:
        total = nearest.sum()
        if total <= 0:
            # Every candidate left coincides with a pick: take the best ones.
            remaining = np.setdiff1d(np.arange(len(points)), picks)
            order = top_k(points[remaining].sum(axis=1), k - len(picks))
            picks.extend(int(i) for i in remaining[order])
            break
        choice = int(rng.choice(len(points), p=nearest / total))
        picks.append(choice)
        nearest = np.minimum(nearest,
                             ((points - points[choice])**2).sum(axis=1))
    return np.asarray(picks, dtype=np.int64)


def _check_k(scores: np.ndarray, k: int) -> None:
    if not 0 <= k <= len(scores):
        raise ValueError(
            f'cannot pick {k} items out of {len(scores)} candidates')
