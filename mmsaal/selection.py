# Copyright (c) mmsaal contributors. All rights reserved.
"""Pick a query from a vector of acquisition scores (pure numpy).

Equal scores are ordered by tie keys: a seeded random order (:func:`tie_keys`)
that every rank and every resume of a round draws alike, so a model that
scores everything the same picks a random set, not the first items of the
pool or the top rows of an image.
"""
import bisect
import math
from typing import Optional

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of ``uint64`` that scatters
    neighbouring inputs over the whole range."""
    z = np.asarray(values, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def tie_keys(seed: int, positions: np.ndarray) -> np.ndarray:
    """Keys that order tied ``positions`` (ints >= 0) at random, the same
    for the same ``seed``: distinct positions get distinct keys (a
    bijection), so the keys themselves never tie.

    Args:
        seed (int): 0 <= seed < 2**64, e.g. :func:`sub_seed` of a round's.
        positions (np.ndarray): Positions of the candidates.

    Returns:
        np.ndarray: ``uint64`` keys, one per position; smaller goes first.
    """
    with np.errstate(over='ignore'):
        return _mix(np.asarray(positions, np.uint64) ^
                    _mix(np.uint64(seed & int(_MASK))))


def sub_seed(seed: int, position: int) -> int:
    """The tie seed of item ``position`` under a round's ``seed`` (the
    windows of one image, say)."""
    return int(tie_keys(seed, np.asarray([position]))[0])


def tie_order(scores: np.ndarray, keys: np.ndarray,
              features: Optional[np.ndarray] = None) -> np.ndarray:
    """A permutation of the candidates that reorders each group of equal
    ones (the same score and, if given, the same ``features`` row) by
    ``keys`` within the positions the group holds; every other candidate
    keeps its position.

    A selection that breaks ties by position (:func:`top_k`) then breaks
    them by key; one that draws (:func:`kmeans_pp_seeding`) sees the same
    values at every position, so it draws as before, and the draw lands on
    a random member of a tied group.

    Args:
        scores (np.ndarray): ``(N,)`` scores.
        keys (np.ndarray): ``(N,)`` tie keys (:func:`tie_keys`).
        features (np.ndarray, optional): ``(N,)`` or ``(N, D)``, what else
            must be equal for two candidates to tie.

    Returns:
        np.ndarray: ``(N,)`` positions: candidate ``order[i]`` goes to
        position ``i``.
    """
    scores = np.asarray(scores, np.float64)
    size = len(scores)
    order = np.arange(size)
    by_score = np.argsort(scores, kind='stable')
    ranked = scores[by_score]
    equal = ranked[1:] == ranked[:-1]
    if not equal.any():
        return order
    # Only the candidates that share their score with another.
    shared = np.zeros(size, bool)
    shared[1:] |= equal
    shared[:-1] |= equal
    tied = np.sort(by_score[shared])
    columns = [scores[tied]]
    if features is not None:
        rows = np.asarray(features).reshape(size, -1)[tied]
        columns += [rows[:, c] for c in range(rows.shape[1])]
    # Groups of equal rows, each in position order...
    grouped = tied[np.lexsort((tied, *columns[::-1]))]
    values = np.stack([c[np.searchsorted(tied, grouped)] for c in columns],
                      axis=1)
    group = np.cumsum(np.r_[True, (values[1:] != values[:-1]).any(axis=1)])
    # ...then each group's members by key, into the same positions.
    members = grouped[np.lexsort((keys[grouped], group))]
    order[grouped] = members
    return order


def top_k(scores: np.ndarray, k: int,
          keys: Optional[np.ndarray] = None) -> np.ndarray:
    """Positions of the ``k`` largest scores, largest first.

    Ties are broken by ``keys`` (smaller first), or by position (the
    earlier item first) when there are none, so the result does not depend
    on how the scores were sharded or gathered.

    Args:
        scores (np.ndarray): One score per candidate, shape ``(N,)``.
        k (int): How many to pick, ``0 <= k <= N``.
        keys (np.ndarray, optional): ``(N,)`` tie keys
            (:func:`tie_keys`). Defaults to None.

    Returns:
        np.ndarray: ``k`` positions into ``scores``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    _check_k(scores, k)
    order = np.lexsort((np.arange(len(scores)) if keys is None else keys,
                        -scores))
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
