# Copyright (c) mmsaal contributors. All rights reserved.
"""Pick a query from a vector of acquisition scores (pure numpy)."""
import bisect
import math

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

    Over a score vector (1-D) this costs O(N log N) for N candidates and k
    picks, not O(k N): see :func:`_seeding_1d`.

    Args:
        scores (np.ndarray): One score (or score vector) per candidate,
            shape ``(N,)`` or ``(N, D)``.
        k (int): How many to pick.
        rng (np.random.Generator): Source of the draws.

    Returns:
        np.ndarray: ``k`` distinct positions into ``scores``.
    """
    points = np.asarray(scores, dtype=np.float64)
    if points.ndim == 2 and points.shape[1] == 1:
        points = points[:, 0]
    _check_k(points, k)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if points.ndim == 1:
        return _seeding_1d(points, k, rng)
    first = int(top_k(points.sum(axis=1), 1)[0])
    picks = [first]
    nearest = ((points - points[first])**2).sum(axis=1)
    while len(picks) < k:
        total = nearest.sum()
        if total <= 0:
            # Every candidate left coincides with a pick: take the best ones.
            return _with_best_left(points.sum(axis=1), picks, k)
        choice = int(rng.choice(len(points), p=nearest / total))
        picks.append(choice)
        nearest = np.minimum(nearest,
                             ((points - points[choice])**2).sum(axis=1))
    return np.asarray(picks, dtype=np.int64)


def _seeding_1d(values: np.ndarray, k: int,
                rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding over scalars, draw for draw the procedure of
    :func:`kmeans_pp_seeding`, in O(N log N).

    On a line, a pick changes the nearest-pick distance of only the
    candidates between its neighbouring picks in sorted order, so each pick
    updates that gap alone. The draw is the same inverse-CDF search as
    ``rng.choice(p=d2 / d2.sum())`` over the candidates in their own order,
    through per-block sums of the squared distances (the sums are kept
    incrementally and taken again now and then, so they stay within a few
    ulps): one uniform per pick, the same candidate whenever the uniform
    is not within rounding of a boundary between two candidates.
    """
    size = len(values)
    first = int(top_k(values, 1)[0])
    picks = [first]
    order = np.argsort(values, kind='stable')
    rank = np.empty(size, np.int64)
    rank[order] = np.arange(size)
    block = max(64, int(math.sqrt(size)))
    blocks = -(-size // block)
    nearest = np.zeros(blocks * block, np.float64)
    nearest[:size] = (values - values[first])**2
    sums = np.zeros(blocks)
    positive = np.zeros(blocks, np.int64)

    def recount() -> None:
        grid = nearest.reshape(blocks, block)
        sums[:] = grid.sum(axis=1)
        positive[:] = (grid > 0).sum(axis=1)

    recount()
    updates = 0
    taken = [int(rank[first])]  # sorted positions of the picks
    while len(picks) < k:
        if not positive.any():
            # Every candidate left coincides with a pick: take the best ones.
            return _with_best_left(values, picks, k)
        target = rng.random() * sums.sum()
        cumulative = np.cumsum(sums)
        chosen = min(int(np.searchsorted(cumulative, target, side='right')),
                     blocks - 1)
        while not positive[chosen]:  # rounding went past a block's end
            chosen = chosen - 1 if positive[:chosen].any() else chosen + 1
        start = chosen * block
        local = np.cumsum(nearest[start:start + block])
        offset = target - (cumulative[chosen - 1] if chosen else 0.0)
        offset = min(max(offset, 0.0), np.nextafter(local[-1], 0))
        choice = start + int(np.searchsorted(local, offset, side='right'))
        picks.append(choice)
        # The candidates between the pick's neighbours in sorted order.
        where = int(rank[choice])
        slot = bisect.bisect_left(taken, where)
        low = taken[slot - 1] + 1 if slot else 0
        high = taken[slot] if slot < len(taken) else size
        taken.insert(slot, where)
        gap = order[low:high]
        closer = (values[gap] - values[choice])**2
        moved = closer < nearest[gap]
        gap, closer = gap[moved], closer[moved]
        np.add.at(sums, gap // block, closer - nearest[gap])
        np.subtract.at(positive, gap[closer == 0] // block, 1)
        nearest[gap] = closer
        updates += len(gap)
        if updates > size:
            recount()
            updates = 0
        sums[positive == 0] = 0.0
    return np.asarray(picks, dtype=np.int64)


def _with_best_left(totals: np.ndarray, picks: list, k: int) -> np.ndarray:
    """``picks``, then the best of the rest up to ``k`` (by score, ties by
    position)."""
    remaining = np.setdiff1d(np.arange(len(totals)), picks)
    order = top_k(totals[remaining], k - len(picks))
    return np.asarray(picks + [int(i) for i in remaining[order]],
                      dtype=np.int64)


def _check_k(scores: np.ndarray, k: int) -> None:
    if not 0 <= k <= len(scores):
        raise ValueError(
            f'cannot pick {k} items out of {len(scores)} candidates')
