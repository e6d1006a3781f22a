# Copyright (c) mmsaal contributors. All rights reserved.
"""From a per-pixel score map to query units: square regions or pixels.

Pure numpy/OpenCV/torch, no OpenMMLab imports. A region is a ``size x size``
window at any position of the image; it scores the mean of the map over
its pixels. Regions are picked greedily, best first, never overlapping one
another nor a pixel revealed before (RIPU's region-based setting). Pixels
are ranked by their score directly.

Ranking costs a few passes over the map, not one per region: window sums
come from a summed-area table, their maxima are kept per tile, and a
window whose table sum lies within the table's rounding error of the best
is summed again exactly. The corners and scores are those of the plain
definition (``avg_pool2d`` in float64 and one full-map argmax per region),
bit for bit, with ties in the order of seeded keys (``ties``,
:func:`mmsaal.selection.tie_keys` of the window's or pixel's row-major
position) or, without a seed, the first position first.
"""
import threading
from functools import partial
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np
import torch

from mmsaal.selection import tie_keys

GRANULARITIES = ('image', 'region', 'pixel')
#: Double precision's unit roundoff, times 2.
_EPS = 2.0**-52


def unit_area(granularity: str, region_size: int) -> int:
    """Pixels in one query unit."""
    return region_size * region_size if granularity == 'region' else 1


def window_sums(values: np.ndarray, size: int,
                out: Optional[np.ndarray] = None) -> np.ndarray:
    """The sum of every ``size x size`` window of ``values`` ``(H, W)``,
    ``(H - size + 1, W - size + 1)``, from its summed-area table.

    Exact for counts (``uint8`` values); for floats (``float32`` or
    ``float64``, summed in float64) each sum is within ``2 * (H + W) *
    eps * sum(|values|)`` of the window's own sum.
    """
    height, width = values.shape
    if values.dtype == np.uint8:  # int32: exact
        table = cv2.integral(
            values, sum=_workspace('counts', (height + 1, width + 1),
                                   np.int32))
    else:
        table = cv2.integral(
            values, sum=_workspace('table', (height + 1, width + 1)),
            sdepth=cv2.CV_64F)
    sums = np.empty((values.shape[0] - size + 1, values.shape[1] - size + 1),
                    table.dtype) if out is None else out
    # Column strips of the table, then their differences: two passes over
    # memory, each of them one rounding per sum like the table's own
    # additions. OpenCV runs these strided element-wise ops several times
    # faster than numpy, on the calling thread alone (torch's would start
    # its own threads under each ranking thread).
    strips = _workspace('strips' if table.dtype == np.float64 else
                        'count strips', (height - size + 1, width + 1),
                        table.dtype)
    cv2.subtract(table[size:], table[:-size], dst=strips)
    cv2.subtract(strips[:, size:], strips[:, :-size], dst=sums)
    return sums


def window_means(values: np.ndarray, size: int, ys: np.ndarray,
                 xs: np.ndarray) -> np.ndarray:
    """The mean of the windows at corners ``(ys, xs)`` as ``avg_pool2d``
    computes it in float64: the window's values summed row by row, in
    order, divided by its area."""
    ys, xs = np.asarray(ys, np.int64), np.asarray(xs, np.int64)
    means = np.empty(len(ys), np.float64)
    if len(ys) <= 4:  # slices: a fraction of the gather's cost, same sums
        for row, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
            window = values[y:y + size, x:x + size].astype(np.float64)
            means[row] = np.cumsum(window.ravel())[-1] / (size * size)
        return means
    if len(ys) >= 512:
        # Many windows: one pixel of every window at a time.
        flat, sums = values.ravel(), np.zeros(len(ys), np.float64)
        base = ys * values.shape[1] + xs
        for dy in range(size):
            for dx in range(size):
                sums += flat.take(base + (dy * values.shape[1] + dx))
        return sums / (size * size)
    # One row of every window at a time, its sum carried into the next.
    sums = np.zeros(len(ys), np.float64)
    columns = xs[:, None] + np.arange(size)
    for dy in range(size):
        row = values[(ys + dy)[:, None], columns].astype(np.float64)
        row[:, 0] += sums
        sums = np.cumsum(row, axis=1)[:, -1]
    means[:] = sums / (size * size)
    return means


class _TileMaxima:
    """The maxima of a ``(H, W)`` array of keys over ``tile x tile``
    blocks, kept up to date as keys drop to ``-inf``."""

    def __init__(self, shape: Tuple[int, int], tile: int,
                 slot: Optional[int] = None) -> None:
        height, width = shape
        self.tile = tile
        rows, cols = -(-height // tile), -(-width // tile)
        self.keys = _workspace('keys', (rows * tile, cols * tile),
                               slot=slot)
        self.keys[height:] = -np.inf
        self.keys[:, width:] = -np.inf
        self.view = self.keys[:height, :width]
        self.maxima = None

    def ready(self) -> None:
        """Take the maxima once :attr:`view` holds the keys."""
        self.maxima = self._maxima(0, self.maxima_shape[0], 0,
                                   self.maxima_shape[1])

    @property
    def maxima_shape(self) -> Tuple[int, int]:
        return (self.keys.shape[0] // self.tile,
                self.keys.shape[1] // self.tile)

    def _maxima(self, a0: int, a1: int, b0: int, b1: int) -> np.ndarray:
        t = self.tile
        rows = self.keys[a0 * t:a1 * t, b0 * t:b1 * t].reshape(
            a1 - a0, t, (b1 - b0) * t).max(axis=1)
        return rows.reshape(a1 - a0, b1 - b0, t).max(axis=2)

    def best(self) -> float:
        return float(self.maxima.max())

    def only_one(self, threshold: float) -> Optional[Tuple[int, int]]:
        """``(y, x)`` of the key >= ``threshold`` when there is one only
        (else None)."""
        tiles = np.flatnonzero(self.maxima >= threshold)
        if len(tiles) != 1:
            return None
        a, b = divmod(int(tiles[0]), self.maxima.shape[1])
        t = self.tile
        keys = np.flatnonzero(
            self.keys[a * t:(a + 1) * t, b * t:(b + 1) * t] >= threshold)
        if len(keys) != 1:
            return None
        y, x = divmod(int(keys[0]), t)
        return a * t + y, b * t + x

    def at_least(self, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        """``(ys, xs)`` of every key >= ``threshold``."""
        t = self.tile
        ys, xs = [], []
        for a, b in zip(*np.nonzero(self.maxima >= threshold)):
            y, x = np.nonzero(
                self.keys[a * t:(a + 1) * t, b * t:(b + 1) * t] >= threshold)
            ys.append(y + a * t)
            xs.append(x + b * t)
        if not ys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(ys), np.concatenate(xs)

    def drop(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Set the keys of rows ``[y0, y1)``, columns ``[x0, x1)`` to
        ``-inf``."""
        t = self.tile
        self.keys[y0:y1, x0:x1] = -np.inf
        a0, a1, b0, b1 = y0 // t, -(-y1 // t), x0 // t, -(-x1 // t)
        self.maxima[a0:a1, b0:b1] = self._maxima(a0, a1, b0, b1)


def _keys(flat: np.ndarray, ties: Optional[int]) -> np.ndarray:
    """The tie keys of row-major positions ``flat``: seeded, or the
    positions themselves."""
    return flat if ties is None else tie_keys(ties, flat)


def rank_regions(score_map: torch.Tensor,
                 size: int,
                 max_regions: int,
                 blocked: Optional[torch.Tensor] = None,
                 floor: Optional[float] = None,
                 ties: Optional[int] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Greedy non-overlapping ``size x size`` regions, best mean first.

    Each step takes the window of the highest mean (on ties, the one of
    the smallest tie key) among those that overlap no region taken before
    and no blocked pixel.

    Args:
        score_map (Tensor): ``(H, W)`` pixel scores, finite.
        size (int): Side of the square regions.
        max_regions (int): Stop after this many.
        blocked (Tensor, optional): ``(H, W)`` bool, pixels no region may
            cover (already revealed).
        floor (float, optional): Stop before the first region that scores
            below it. Defaults to None.
        ties (int, optional): Seed of the order among windows of equal
            means (:func:`~mmsaal.selection.tie_keys` of their row-major
            corner); None: the first in row-major order. Defaults to None.

    Returns:
        tuple[np.ndarray, np.ndarray]: Top-left corners ``(K, 2)`` as
        ``(y, x)`` and their scores ``(K,)``, best first, ``K <=
        max_regions``.
    """
    if max_regions <= 0:
        return _no_regions()
    return prepare_regions(score_map, size, blocked,
                           ties=ties)(max_regions, floor)


def _no_regions(*args, **kwargs) -> Tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 2), np.int64), np.zeros(0, np.float64)


def prepare_regions(score_map: torch.Tensor, size: int,
                    blocked: Optional[torch.Tensor] = None,
                    slot: Optional[int] = None,
                    ties: Optional[int] = None
                    ) -> Callable[..., Tuple[np.ndarray, np.ndarray]]:
    """The part of :func:`rank_regions` that reads the whole map: window
    sums and their tile maxima, in OpenCV and numpy calls that release the
    GIL, so the images of a batch prepare side by side in threads. Returns
    the greedy picking, ``pick(max_regions, floor=None)``, which holds the
    GIL and so runs best one image after another.

    Args:
        slot (int, optional): Keep the window sums in this slot's
            workspace (one per image of a batch, for picks that run after
            the batch is prepared) instead of the calling thread's.
    """
    values, magnitude = _as_array(score_map)
    height, width = values.shape
    if height < size or width < size:
        return _no_regions
    area = size * size
    tiles = _TileMaxima((height - size + 1, width - size + 1), size, slot)
    # Window sums, not means: dividing by the area keeps their order, and
    # the chosen windows' means are taken exactly below.
    sums = window_sums(values, size, out=tiles.view)
    # How far a table's window sum can lie from the window's own: both
    # carry at most (additions on the way) * eps * sum(|v|); twice that
    # bound, both ways, and room for the division's rounding.
    tolerance = 2 * (8.0 * (height + width) + 2 * area + 32) * _EPS * \
        magnitude
    # Windows of zeros sum to exactly 0 either way: they are kept aside
    # (row-major, put in tie order once one is picked), so a plateau of
    # them costs nothing.
    free = None
    if blocked is not None:
        blocked = blocked.cpu().numpy() if isinstance(
            blocked, torch.Tensor) else np.asarray(blocked)
        if blocked.any():
            free = window_sums(blocked.view(np.uint8), size) == 0
    zeros = np.zeros(0, np.int64)
    if cv2.countNonZero(values) < values.size:
        zero = window_sums((values != 0).view(np.uint8), size) == 0
        if free is not None:
            zero &= free
        zeros = np.flatnonzero(zero)
        if free is None:
            free = np.ones(zero.shape, bool)
        tiles.view[zero] = -np.inf
    if free is not None:
        np.copyto(tiles.view, -np.inf, where=~free)
    tiles.ready()
    return partial(_pick_regions, values, tiles, size, tolerance, free,
                   zeros, ties=ties)


def _pick_regions(values: np.ndarray, tiles: _TileMaxima, size: int,
                  tolerance: float, free: Optional[np.ndarray],
                  zeros: np.ndarray, max_regions: int,
                  floor: Optional[float] = None,
                  ties: Optional[int] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """The greedy steps of :func:`rank_regions` over prepared window
    sums (:func:`prepare_regions`)."""
    sums, area = tiles.view, size * size
    width_w = sums.shape[1]
    if max_regions <= 0:
        return _no_regions()
    if floor is not None and floor > 0:
        # Windows of zeros, and all below the floor, are never picked.
        ranked = _greedy_above(values, tiles, size, floor, tolerance, ties)
        if ranked is not None:
            corners, scores = ranked
            return corners[:max_regions], scores[:max_regions]
    next_zero = 0
    # Zero windows in tie order once one can be picked: sorting a plateau
    # of them costs more than the ranking, and most maps never get there.
    zeros_in_order = ties is None
    corners = []
    while len(corners) < max_regions:
        next_zero = _first_free(zeros, next_zero, free)
        zero_left = next_zero < len(zeros)
        best = tiles.best()
        if zero_left:
            best = max(best, 0.0)
        if best == -np.inf:
            break
        threshold = best - tolerance
        if zero_left and 0.0 >= threshold and not zeros_in_order:
            zeros = zeros[np.argsort(tie_keys(ties, zeros), kind='stable')]
            zeros_in_order = True
            next_zero = _first_free(zeros, 0, free)
        # Mostly one window is within the tolerance of the best: it is
        # the best, and its exact mean is taken with the others' below.
        only = None if zero_left and 0.0 >= threshold else \
            tiles.only_one(threshold)
        if only is not None:
            y, x = only
            if floor is not None and best - 2 * tolerance < floor * area \
                    and window_means(values, size, [y], [x])[0] < floor:
                break
        else:
            ys, xs = tiles.at_least(threshold)
            exact = window_means(values, size, ys, xs)
            flat = ys * width_w + xs
            if zero_left and 0.0 >= threshold:
                exact = np.append(exact, 0.0)
                flat = np.append(flat, zeros[next_zero])
            top = exact.max()
            if floor is not None and top < floor:
                break
            tied = flat[exact == top]
            y, x = divmod(int(tied[np.argmin(_keys(tied, ties))]), width_w)
        corners.append((y, x))
        # Every window whose top-left corner lies within size - 1 of this
        # one overlaps it.
        y0, x0 = max(y - size + 1, 0), max(x - size + 1, 0)
        y1, x1 = min(y + size, sums.shape[0]), min(x + size, width_w)
        tiles.drop(y0, y1, x0, x1)
        if free is not None:
            free[y0:y1, x0:x1] = False
    corners = np.asarray(corners, np.int64).reshape(-1, 2)
    # A window of zeros means 0.0 exactly, as its sum below does.
    return corners, window_means(values, size, corners[:, 0], corners[:, 1])


#: The most windows above a floor that :func:`_greedy_above` orders; past
#: it, the tile maxima's greedy steps cost less than sorting them.
SPARSE_LIMIT = 1 << 15


def _greedy_above(values: np.ndarray, tiles: _TileMaxima, size: int,
                  floor: float, tolerance: float,
                  ties: Optional[int] = None
                  ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The greedy regions whose mean is at least ``floor`` (> 0), from the
    few windows that can reach it, sorted once, instead of a search of the
    tile maxima per region; None when that cannot be shown to pick what
    :func:`rank_regions`' loop picks (too many windows, or near ties).

    Greedy picking keeps a window iff no overlapping window with a higher
    key (mean, then the lower tie key) is kept, so it depends only
    on how each overlapping pair is ordered. The windows are ordered by
    their table sums, which order a pair as its exact means do unless they
    lie within ``tolerance``; and if no kept window lies that close to one
    that overlaps it, every pair that decides a pick is ordered right: a
    window dropped for a kept one is dropped for it either way, and two
    kept windows never overlap. Otherwise this returns None.
    """
    threshold = floor * (size * size) - 2 * tolerance
    ys, xs = tiles.at_least(threshold)
    if len(ys) > SPARSE_LIMIT:
        return None
    width_w = tiles.view.shape[1]
    sums = tiles.view[ys, xs]
    order = np.lexsort((_keys(ys * width_w + xs, ties), -sums))
    ys, xs, sums = ys[order], xs[order], sums[order]
    alive = _workspace('alive', tiles.view.shape, bool)
    alive.fill(True)
    flat = ys * width_w + xs
    kept = []
    start = _first_free(flat, 0, alive)
    while start < len(flat):
        kept.append(start)
        y, x = int(ys[start]), int(xs[start])
        alive[max(y - size + 1, 0):y + size, max(x - size + 1, 0):x + size] \
            = False
        start = _first_free(flat, start + 1, alive)
    kept = np.asarray(kept, np.int64)
    # Near ties of a kept window: the windows whose sums lie within the
    # tolerance of its own (a run of the descending order).
    descending = -sums
    low = np.searchsorted(descending, -sums[kept] - tolerance, 'left')
    high = np.searchsorted(descending, -sums[kept] + tolerance, 'right')
    for k, lo, hi in zip(kept[high - low > 1].tolist(),
                         low[high - low > 1].tolist(),
                         high[high - low > 1].tolist()):
        near = np.arange(lo, hi)
        near = near[near != k]
        if ((np.abs(ys[near] - ys[k]) < size) &
                (np.abs(xs[near] - xs[k]) < size)).any():
            return None
    means = window_means(values, size, ys[kept], xs[kept])
    above = means >= floor
    kept, means = kept[above], means[above]
    order = np.lexsort((_keys(flat[kept], ties), -means))
    kept, means = kept[order], means[order]
    return (np.stack([ys[kept], xs[kept]], axis=1).astype(np.int64)
            .reshape(-1, 2), means)


_WORKSPACE = threading.local()


_SLOTS: Dict[Tuple[str, int], np.ndarray] = {}


def _workspace(name: str, shape: Tuple[int, int],
               dtype=np.float64, slot: Optional[int] = None) -> np.ndarray:
    """An array of ``shape`` that this thread's previous call of
    the same shape leaves for the next (or, with ``slot``, the previous
    call of that slot's, whichever thread it ran in): a 1024x2048 map ranks
    in a few milliseconds, and faulting in fresh pages for its tables would
    cost as much again. Only the last shape is kept."""
    kept = getattr(_WORKSPACE, name, None) if slot is None else \
        _SLOTS.get((name, slot))
    if kept is None or kept.shape != shape or kept.dtype != dtype:
        kept = np.empty(shape, dtype)
        if slot is None:
            setattr(_WORKSPACE, name, kept)
        else:
            _SLOTS[(name, slot)] = kept
    return kept


def _first_free(flat: np.ndarray, start: int,
                free: Optional[np.ndarray]) -> int:
    """The first position from ``start`` of ``flat`` whose window is still
    free (``len(flat)`` when none is)."""
    step = 64
    while start < len(flat):
        ok = free.flat[flat[start:start + step]]
        if ok.any():
            return start + int(np.argmax(ok))
        start += step
        step = min(step * 2, 1 << 16)
    return len(flat)


def _as_array(score_map) -> Tuple[np.ndarray, float]:
    """The map as a contiguous float32 (or float64) array and the sum of
    its absolute values, refusing what cannot be ranked."""
    values = score_map.detach().cpu().numpy() if isinstance(
        score_map, torch.Tensor) else np.asarray(score_map)
    if values.dtype != np.float32:
        values = values.astype(np.float64)
    values = np.ascontiguousarray(values)
    if values.ndim != 2:
        raise ValueError(f'a score map is (H, W), got {values.shape}')
    # Float32 values sum in float64 without overflow: a finite sum means
    # finite values.
    magnitude = float(cv2.norm(values, cv2.NORM_L1)) if values.size else 0.0
    if not np.isfinite(magnitude):
        raise ValueError('the score map holds NaN or infinite values; a '
                         'unit cannot be ranked on them')
    return values, magnitude


def kth_largest(values: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``values`` (1-D, ``0 < k <= len``), as
    ``np.partition`` gives it, from a partition of the few values above a
    threshold that a strided sample sets, when at least ``k`` lie above it
    (else of all of them): an image's best pixels are a sliver of its
    map, and a full partition of 2 million values costs 8 ms."""
    size = len(values)
    step = size // 65536
    if step >= 4:
        sample = values[::step]
        # ~1.5x the sample's share of the k best, and some slack.
        rank = min(len(sample), int(k / step * 1.5) + 64)
        threshold = np.partition(sample, len(sample) - rank)[
            len(sample) - rank]
        above = values[values >= threshold]
        if len(above) >= k:  # the k best, ties included, are all above
            return np.partition(above, len(above) - k)[len(above) - k]
    return np.partition(values, size - k)[size - k]


def rank_pixels(score_map: torch.Tensor,
                max_pixels: int,
                blocked: Optional[torch.Tensor] = None,
                floor: Optional[float] = None,
                ordered: bool = True,
                ties: Optional[int] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``max_pixels`` best pixels not blocked, best first (ties by
    tie key, see :func:`rank_regions`).

    Args:
        floor (float, optional): Leave out pixels that score below it.
        ordered (bool): False: when no more than ``max_pixels`` are left
            (nothing to cut), in position order instead, for a caller that
            keeps only some and orders those (:func:`best_first`).
            Defaults to True.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(K, 2)`` ``(y, x)`` and scores.
    """
    values, _ = _as_array(score_map)
    width = values.shape[1]
    scores = values.ravel()
    count = max(max_pixels, 0)
    if blocked is not None:
        blocked = blocked.cpu().numpy() if isinstance(
            blocked, torch.Tensor) else np.asarray(blocked)
        if blocked.any():
            # Blocked pixels score -inf (no map holds it: maps are finite).
            scores = scores.copy()
            scores[blocked.ravel()] = -np.inf
    if floor is None:
        floor = -np.inf
    if 0 < count < len(scores):
        # Only what can be among the best: every pixel at least as good as
        # the count-th, ties included, so the order below is the full one.
        floor = max(floor, kth_largest(scores, count))
    positions = np.flatnonzero(scores >= floor) if count else \
        np.zeros(0, np.int64)
    candidates = scores[positions].astype(np.float64)
    if floor == -np.inf:
        keep = candidates > -np.inf
        positions, candidates = positions[keep], candidates[keep]
    if not ordered and len(positions) <= count:
        corners = np.stack(np.divmod(positions, width), axis=1)
        return corners.astype(np.int64).reshape(-1, 2), candidates
    order = np.lexsort((_keys(positions, ties), -candidates))[:count]
    chosen = positions[order]
    corners = np.stack(np.divmod(chosen, width), axis=1)
    return corners.astype(np.int64).reshape(-1, 2), candidates[order]


def best_first(corners: np.ndarray, scores: np.ndarray, width: int,
               ties: Optional[int] = None) -> np.ndarray:
    """The order that puts pixels best first, ties by tie key (as
    :func:`rank_pixels` ranks them), of pixels at ``corners``
    ``(K, 2)`` of a map ``width`` wide."""
    corners = np.asarray(corners, np.int64).reshape(-1, 2)
    positions = corners[:, 0] * width + corners[:, 1]
    return np.lexsort((_keys(positions, ties),
                       -np.asarray(scores, np.float64)))


def rank_units(score_map: torch.Tensor, granularity: str, region_size: int,
               max_units: int,
               blocked: Optional[torch.Tensor] = None,
               floor: Optional[float] = None,
               ordered: bool = True,
               ties: Optional[int] = None) -> Dict:
    """Rank an image's candidate units (see :func:`rank_regions`,
    :func:`rank_pixels`; ``ordered`` applies to pixels).

    Returns:
        dict: ``corners`` ``(K, 2)``, ``scores`` ``(K,)`` best first and
        ``shape`` ``(H, W)``.
    """
    return prepare_units(score_map, granularity, region_size, max_units,
                         blocked, floor, ordered, ties=ties)()


def prepare_units(score_map: torch.Tensor, granularity: str,
                  region_size: int, max_units: int,
                  blocked: Optional[torch.Tensor] = None,
                  floor: Optional[float] = None,
                  ordered: bool = True,
                  slot: Optional[int] = None,
                  ties: Optional[int] = None) -> Callable[[], Dict]:
    """:func:`rank_units` in two parts: this one, which threads run side by
    side (pixels: all of it; regions: :func:`prepare_regions`), returns
    the rest, which gives :func:`rank_units`' result."""
    shape = tuple(score_map.shape)
    if granularity == 'region':
        pick = _no_regions if max_units <= 0 else prepare_regions(
            score_map, region_size, blocked, slot, ties)

        def regions() -> Dict:
            corners, scores = pick(max_units, floor)
            return dict(corners=corners, scores=scores, shape=shape)

        return regions
    if granularity != 'pixel':
        raise ValueError(f'granularity must be one of {GRANULARITIES[1:]} '
                         f'to rank units, got {granularity!r}')
    corners, scores = rank_pixels(score_map, max_units, blocked, floor,
                                  ordered, ties)
    ranked = dict(corners=corners, scores=scores, shape=shape)
    return lambda: ranked


def class_shares(labels: torch.Tensor, corners: np.ndarray,
                 granularity: str, region_size: int) -> np.ndarray:
    """Each unit's share of pixels per predicted class.

    Args:
        labels (Tensor): ``(H, W)`` predicted classes (int).
        corners (np.ndarray): ``(K, 2)`` top-left ``(y, x)`` of the units.
        granularity (str): ``'region'`` or ``'pixel'``.
        region_size (int): Side of a region.

    Returns:
        np.ndarray: Regions: ``(K, labels.max() + 1)``, rows summing to 1.
        Pixels: ``(K,)``, the predicted class of each (its share is that
        class alone), which keeps a pixel table small.
    """
    # No copy of an int64 map (an argmax): only the units' windows are read.
    labels = np.asarray(labels.cpu().numpy(), dtype=np.int64)
    corners = np.asarray(corners, np.int64).reshape(-1, 2)
    if granularity == 'pixel':
        return labels[corners[:, 0], corners[:, 1]].astype(np.int16)
    num_classes = int(labels.max()) + 1 if labels.size else 1
    side = region_size
    shares = np.zeros((len(corners), num_classes), np.float64)
    for row, (y, x) in enumerate(corners):
        window = labels[y:y + side, x:x + side].ravel()
        shares[row] = np.bincount(window, minlength=num_classes) / len(window)
    return shares


def one_hot_shares(classes: np.ndarray, width: int = 0) -> np.ndarray:
    """Class shares ``(N, C)`` from :func:`class_shares`' pixel classes
    ``(N,)`` (shares pass through), at least ``width`` classes wide."""
    classes = np.asarray(classes)
    if classes.ndim == 2:
        return classes
    width = max(width, int(classes.max()) + 1 if classes.size else 1)
    shares = np.zeros((len(classes), width), np.float64)
    shares[np.arange(len(classes)), classes] = 1.0
    return shares


def units_mask(shape: Tuple[int, int], corners: np.ndarray,
               granularity: str, region_size: int) -> np.ndarray:
    """The bool mask of the pixels the units cover."""
    mask = np.zeros(shape, dtype=bool)
    corners = np.asarray(corners, np.int64).reshape(-1, 2)
    if granularity != 'region':
        mask[corners[:, 0], corners[:, 1]] = True
        return mask
    for y, x in corners:
        mask[y:y + region_size, x:x + region_size] = True
    return mask


def units_per_image(num_pixels: int, fraction: float, area: int) -> int:
    """RIPU's equal share: the units an image of ``num_pixels`` gets."""
    return int(fraction * num_pixels // area)
