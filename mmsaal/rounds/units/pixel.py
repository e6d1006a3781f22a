# Copyright (c) mmsaal contributors. All rights reserved.
"""Square regions or single pixels of segmentation images as units
(``granularity='region'`` or ``'pixel'``)."""
import os.path as osp
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from mmsaal.pool import (IGNORE_INDEX, QUERY_UNITS_FILE, PixelLabels,
                         PoolState, Reveal, save_query_units,
                         write_pixel_summary, write_regions)
from mmsaal.registry import UNITS
from mmsaal.regions import (best_first, class_shares, kth_largest,
                            prepare_units, unit_area, units_per_image)
from mmsaal.selection import sub_seed
from mmsaal.tasks import task_of
from mmsaal.utils.errors import FieldError
from mmsaal.utils.threads import thread_map
from .image import ImageUnits, Writer
from .pick import DIVERSITY_CANDIDATES
from .query import Budget, Query, UnitTable

Shape = Tuple[int, int]


@UNITS.register_module(name=['region', 'pixel'])
class PixelUnits(ImageUnits):
    """Square regions or single pixels of segmentation images.

    The budget is a fraction of the pool's pixels per round, spent in
    units of ``region_size x region_size`` windows (or pixels). With
    ``budget_per_image`` every image gets its equal share (RIPU's
    setting), otherwise the units are ranked over the whole pool. What is
    revealed lives in the pool state, is persisted as
    ``round_XX/revealed.npz`` (corners or pixel positions) with
    ``round_XX/regions.json`` (what a person reads: the regions and their
    scores; for pixels each image's count and best and last score), and is
    exported as one PNG mask per image for ``LoadRevealedAnnotations``.

    A pool-wide round can pick only among the pool's best units (the
    budget, or :data:`DIVERSITY_CANDIDATES` times it with diversity), so
    an image stops ranking below the best it has seen that many of, and a
    rank sends only those: what it sends grows with the budget, not with
    the pixels.

    Args:
        granularity (str): ``'region'`` or ``'pixel'``.
        region_size (int): Side of a region in label-map pixels.
        budget_per_image (bool): Equal share per image, or pool-wide.
        budget (float): Fraction of the pool's pixels per round.
        pixels (PixelLabels): The pool's pixel labels.
    """

    def __init__(self, granularity: str, region_size: int,
                 budget_per_image: bool, budget: float,
                 pixels: PixelLabels) -> None:
        super().__init__(budget, pixels)
        self.granularity = granularity
        self.region_size = region_size
        self.budget_per_image = budget_per_image
        self.position = {p: i for i, p in enumerate(pixels.paths)}
        self._state: Optional[PoolState] = None
        self._rank_cap: Callable[[int], int] = lambda index: 0
        self._best: Optional[_BestScores] = None

    needs_pixel_labels = True

    @classmethod
    def from_settings(cls, settings, pixels: PixelLabels) -> 'PixelUnits':
        """Regions refuse a ``region_size`` larger than an image: it
        would never get a region."""
        if settings.granularity == 'region':
            small = [i for i, (h, w) in enumerate(pixels.shapes)
                     if min(h, w) < settings.region_size]
            if small:
                h, w = pixels.shapes[small[0]]
                raise FieldError(
                    f'ActiveLearningHook.region_size={settings.region_size} '
                    f'is larger than {len(small)} of the '
                    f'{len(pixels.shapes)} pool images (e.g. '
                    f'{pixels.paths[small[0]]} is {h}x{w}), which then never '
                    f'get a region: lower region_size to at most '
                    f'{min(h, w)}.')
        return cls(settings.granularity, settings.region_size,
                   settings.budget_per_image, settings.budget, pixels)

    @property
    def area(self) -> int:
        return unit_area(self.granularity, self.region_size)

    @property
    def side(self) -> int:
        return self.region_size if self.granularity == 'region' else 1

    @property
    def shapes(self) -> List[Shape]:
        return self.pixels.shapes

    def candidates(self, state: PoolState) -> np.ndarray:
        return np.asarray([
            i for i, (h, w) in enumerate(self.shapes)
            if state.revealed.num_revealed([i]) < h * w
        ],
                          dtype=np.int64)

    def share(self, index: int) -> int:
        """RIPU's equal share: the units image ``index`` gets a round."""
        height, width = self.shapes[index]
        return units_per_image(height * width, self.budget, self.area)

    def round_budget(self, state: PoolState,
                     candidates: np.ndarray) -> Budget:
        total = units_per_image(sum(h * w for h, w in self.shapes),
                                self.budget, self.area)
        return Budget(total, self.share if self.budget_per_image else None)

    def needs_scoring(self, sampler) -> bool:
        return True  # even random picks rank units by per-pixel noise

    def prepare(self, sampler, state: PoolState, budget: Budget,
                ties: Optional[int] = None) -> None:
        """How many units :meth:`score_batch` ranks per image: its share
        (times :data:`DIVERSITY_CANDIDATES` for a diverse pick), or
        pool-wide what the round picks among, which no image can
        exceed; ``ties`` seeds the order of equal windows or pixels (each
        image's own, :func:`~mmsaal.selection.sub_seed`)."""
        self._state = state
        self._ties = ties
        factor = DIVERSITY_CANDIDATES if sampler.diversity else 1
        if budget.per_item is None:
            self._best = _BestScores(budget.total * factor)
            self._rank_cap = lambda index: budget.total * factor
        else:
            self._best = None
            self._rank_cap = lambda index: budget.per_item(index) * factor

    def score_batch(self, sampler, model, data_batch: dict) -> List[Dict]:
        """Each image's best units, greedy, avoiding revealed pixels; with
        ``diversity='classes'``, also their predicted classes."""
        return self.finish_batch(
            self.start_batch(sampler, model, data_batch))

    def finish_batch(self, started: Tuple[List[Tuple], List[int]]
                     ) -> List[Dict]:
        """The ranking of :meth:`start_batch`'s maps (:meth:`rank_maps`):
        CPU work that a round runs beside the next batch's scoring."""
        return self.rank_maps(*started)

    def start_batch(self, sampler, model, data_batch: dict
                    ) -> Tuple[List[Tuple], List[int]]:
        """A batch's score maps (and predicted classes), on the CPU, with
        the pool positions of their images."""
        if sampler.diversity == 'classes':
            maps = sampler.labeled_score_maps(model, data_batch)
        else:
            maps = [(m, None) for m in sampler.score_maps(model, data_batch)]
        samples = data_batch['data_samples']
        for sample, (score_map, _) in zip(samples, maps):
            index = self.position[sample.img_path]
            if tuple(score_map.shape) != self.shapes[index]:
                raise RuntimeError(
                    f'{type(sampler).__name__} scored {sample.img_path} at '
                    f'{tuple(score_map.shape)}, not at its size '
                    f'{self.shapes[index]}')
        maps = [(score_map.float().cpu(),
                 None if labels is None else labels.cpu())
                for score_map, labels in maps]
        return maps, [self.position[s.img_path] for s in samples]

    def rank_maps(self, maps: List[Tuple], indices: List[int]) -> List[Dict]:
        """The ranked units of a batch's score maps (``(map, predicted
        labels or None)`` of the images at pool positions ``indices``).

        The maps are read side by side in threads (window sums, pixel
        ranks: calls that release the GIL); the greedy picks of regions,
        which hold it, follow one image after another: run in threads too,
        they would only make each other wait.
        """
        # Every image of the batch ranks above the floor the batch started
        # with: a lower floor than one updated image by image ranks a
        # little further down, and what the round picks is the same (the
        # pool's best units are above either), whatever the threads' order.
        floor = None if self._best is None else self._best.floor
        # Pool-wide, an image's pixels above the floor stay in position
        # order: most fall to the pool's floor before the table, which
        # orders what is left (sorting them all cost more than ranking).
        ordered = self._best is None or self.granularity != 'pixel'

        def prepare(position: int) -> Callable[[], Dict]:
            index = indices[position]
            blocked = self._state.revealed.mask(index)
            return prepare_units(
                maps[position][0].float(), self.granularity,
                self.region_size, self._rank_cap(index),
                None if blocked is None else torch.from_numpy(blocked),
                floor, ordered, slot=position, ties=self._image_ties(index))

        ranked = []
        for finish, (_, labels) in zip(
                thread_map(prepare, range(len(maps)),
                            torch.get_num_threads()), maps):
            units = finish()
            if not ordered:
                units['ordered'] = False
            units['corners'] = units['corners'].astype(np.int32)
            if self.granularity == 'pixel':
                # Values of a float32 map: float32 holds them exactly.
                units['scores'] = units['scores'].astype(np.float32)
            if labels is not None:
                units['classes'] = class_shares(labels, units['corners'],
                                                self.granularity,
                                                self.region_size)
            ranked.append(units)
        if self._best is not None:
            for units in ranked:
                self._best.add(units['scores'])
        return ranked

    def _image_ties(self, index: int) -> Optional[int]:
        ties = getattr(self, '_ties', None)
        return None if ties is None else sub_seed(ties, index)

    def trim(self, scored: List[Dict]) -> List[Dict]:
        """Pool-wide: only the units that can be among the pool's best
        (at least as good as this rank's best that many), so a rank sends
        what the round can pick, not every ranked unit."""
        if self._best is None or not scored:
            return scored
        count = sum(len(units['scores']) for units in scored)
        if count == self._best.added:  # all this rank ranked: known best
            floor = self._best.final()
        elif count > self._best.need > 0:  # some (a simulated rank)
            floor = kth_largest(
                np.concatenate([u['scores'] for u in scored]),
                self._best.need)
        else:
            floor = None
        if floor is None:
            return scored
        return [{key: (value[units['scores'] >= floor] if key in (
            'corners', 'scores', 'classes') else value)
                 for key, value in units.items()} for units in scored]

    def table(self, candidates: np.ndarray,
              scored: Optional[List[Dict]]) -> UnitTable:
        scored = None if scored is None else [
            r if r.get('ordered', True) else
            _in_order(r, self._image_ties(int(i)))
            for i, r in zip(candidates, scored)]
        items = [np.full(len(r['scores']), i, np.int64)
                 for i, r in zip(candidates, scored)]
        classes = None
        if scored and 'classes' in scored[0]:
            if scored[0]['classes'].ndim == 1:
                classes = np.concatenate([r['classes'] for r in scored])
            else:
                width = max(r['classes'].shape[1] for r in scored)
                classes = np.concatenate([
                    np.pad(r['classes'],
                           ((0, 0), (0, width - r['classes'].shape[1])))
                    for r in scored
                ])
        return UnitTable(
            np.concatenate(items) if items else np.zeros(0, np.int64),
            np.concatenate([r['scores'] for r in scored])
            if scored else np.zeros(0),
            np.concatenate([r['corners'] for r in scored])
            if scored else np.zeros((0, 2), np.int32), classes)

    def query(self, table: UnitTable, picked: np.ndarray,
              info: Dict) -> Query:
        # Back to each image's best-first order (per-image picks are
        # sorted runs already, which a stable sort merely checks).
        picked = np.sort(picked, kind='stable')
        items = table.items[picked]
        starts = np.flatnonzero(np.diff(items, prepend=-1))
        ends = np.append(starts[1:], len(picked))
        units = {}
        for start, end in zip(starts.tolist(), ends.tolist()):
            rows = picked[start:end]
            units[int(items[start])] = dict(
                corners=table.corners[rows].astype(np.int64),
                scores=table.scores[rows].astype(np.float64) + 0.0)
        return Query(
            np.asarray(sorted(units), dtype=np.int64),
            {i: float(u['scores'][0])
             for i, u in units.items()}, info, units)

    def round_info(self) -> Dict:
        return dict(granularity=self.granularity)

    def reveal(self, state: PoolState, query: Query) -> Dict:
        revealed = state.reveal_round(self.reveals(query))
        return dict(
            images_queried=len(query.units or ()),
            pixels_revealed=revealed,
            **self.progress(state))

    def reveals(self, query: Query) -> Iterator[Tuple[int, Reveal]]:
        """``(pool position, reveal)`` of what the query covers, one image
        at a time: its units, or whole images (an initial set)."""
        if query.units is None:
            yield from self.pixels.whole(query.indices)
            return
        for index, chosen in query.units.items():
            yield index, Reveal(self.shapes[index], self.granularity,
                                chosen['corners'], self.side)

    def labels_arrived(self, data_info: dict, query: Query,
                       index: int) -> bool:
        """Whether a person's label map covers the queried units: each
        region holds a labeled (not ``IGNORE_INDEX``) pixel, each queried
        pixel is labeled."""
        label_path = task_of(data_info).label_map(data_info)
        if not label_path or not osp.exists(label_path):
            return False
        labels = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        side = self.side
        return all(
            (labels[y:y + side, x:x + side] != IGNORE_INDEX).any()
            for y, x in np.asarray(query.units[index]['corners']).reshape(
                -1, 2))

    def round_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``revealed.npz`` (what the round revealed) and ``regions.json``
        (what a person reads: the regions with their scores; for pixels,
        which are in ``revealed.npz``, each image's count and best and last
        score)."""
        files = super().round_files(round_idx, query, names)
        if self.granularity == 'region':
            files['regions.json'] = self._listing(round_idx, query, names)
        else:
            files['regions.json'] = lambda path: write_pixel_summary(
                path, round_idx, self.granularity, query.units or {}, names)
        return files

    def query_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``regions.json``: the queried units of every image with their
        scores, what an annotator works from; ``units.npz``: the same,
        compact, for the run to resume from."""
        return {
            'regions.json': self._listing(round_idx, query, names),
            QUERY_UNITS_FILE:
            lambda path: save_query_units(path, query.units or {})
        }

    def _listing(self, round_idx: int, query: Query,
                 names: Sequence[str]) -> Writer:
        """The writer of ``regions.json`` with every queried unit."""
        return lambda path: write_regions(path, round_idx, self.granularity,
                                          self.side, query.units or {}, names)

    def describe(self, query: Query, state: PoolState) -> str:
        return (f'revealed {query.info["pixels_revealed"]} pixels in '
                f'{len(query.units)} of {query.info["num_candidates"]} '
                f'candidate images in {query.info["scoring_seconds"]:.1f}s; '
                f'{100 * self.pixels.labeled_fraction(state):.2f}% of the '
                f"pool's pixels labeled.")


def _in_order(units: Dict, ties: Optional[int]) -> Dict:
    """An image's ranked pixels (``ordered=False``) best first, ties by
    the image's tie seed ``ties``."""
    order = best_first(units['corners'], units['scores'],
                       units['shape'][1], ties)
    return {key: (value[order] if key in ('corners', 'scores', 'classes')
                  else value)
            for key, value in units.items() if key != 'ordered'}


class _BestScores:
    """The best ``need`` scores seen so far on this rank; ``floor`` is the
    worst of them once there are that many (None before): no unit below
    it can be among the pool's best ``need``."""

    def __init__(self, need: int) -> None:
        self.need = need
        self.kept: List[np.ndarray] = []
        self.size = 0
        self.added = 0
        self.floor: Optional[float] = None

    def add(self, scores: np.ndarray) -> None:
        if self.need <= 0 or not len(scores):
            return
        # In their own dtype (a pixel's float32): a pool-wide pixel round
        # keeps tens of millions.
        self.kept.append(np.asarray(scores))
        self.size += len(scores)
        self.added += len(scores)
        if self.size >= 2 * self.need or (
                self.floor is None and self.size >= self.need):
            kept = np.concatenate(self.kept)
            self.floor = float(kth_largest(kept, self.need))
            # The need best and their ties: the need-th best of what comes
            # is the same as with the need best alone.
            kept = kept[kept >= self.floor]
            self.kept, self.size = [kept], len(kept)

    def final(self) -> Optional[float]:
        """The ``need``-th best of every score added (None when fewer were):
        what was let go lay below a floor, so below it."""
        if self.size < self.need or self.need <= 0:
            return None
        return float(kth_largest(np.concatenate(self.kept), self.need))
