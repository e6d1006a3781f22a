# Copyright (c) mmsaal contributors. All rights reserved.
"""What a query labels: whole items, or regions or pixels of images.

An image is one unit; a region or a pixel is one unit of an image. Both
kinds answer the same questions, so one round pipeline serves detection
images, segmentation images, regions and pixels:

- which items are candidates, and the round's :class:`Budget`;
- the scores of a batch, per item (:meth:`score_batch`), laid out as one
  :class:`UnitTable` that a pool sampler selects from;
- the :class:`Query` made of the selected units, what revealing it adds to
  the pool state, and the extra files of its round.
"""
import json
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import cv2
import numpy as np
import torch

from mmsaal.datasets.transforms import revealed_mask_path
from mmsaal.pool import (IGNORE_INDEX, PoolState, Reveal, dump_json_atomic,
                         save_reveals)
from mmsaal.registry import UNITS
from mmsaal.regions import (best_first, class_shares, kth_largest,
                            prepare_units, unit_area, units_per_image)
from mmsaal.selection import sub_seed, tie_keys, tie_order, top_k
from mmsaal.tasks import task_of
from mmsaal.utils.errors import FieldError
from mmsaal.utils.files import atomic_write
from mmsaal.utils.images import image_sizes

Shape = Tuple[int, int]
Writer = Callable[[str], None]
#: With ``diversity``, each image offers this many times its share of
#: ranked regions (or pixels) to the diverse pick, and a pool-wide pick
#: chooses among this many times the budget of the pool's best units;
#: without it, exactly its share (the budget), as the pick is then the top
#: ones anyway.
DIVERSITY_CANDIDATES = 4
#: Threads that encode or decode PNGs (OpenCV releases the GIL).
IO_THREADS = min(8, os.cpu_count() or 1)


def count(amount: Union[int, float], total: int) -> int:
    """A count (int) as it is, a fraction (float) of ``total`` rounded."""
    return amount if isinstance(amount, int) else int(round(amount * total))


@dataclass
class Budget:
    """How many units a round labels: ``total`` over the candidates, or,
    when ``per_item`` is set, ``per_item(pool position)`` in each item.
    A ``pool_subset`` never leaves fewer than ``min_candidates``."""
    total: int
    per_item: Optional[Callable[[int], int]] = None
    min_candidates: int = 0


@dataclass
class UnitTable:
    """Every candidate unit of a round, one row each, grouped by item in
    ascending pool position and, within an item, best first.

    ``scores`` is None when the strategy scores nothing (random image
    picks); ``corners`` is None for whole items.
    """
    items: np.ndarray
    scores: Optional[np.ndarray]
    corners: Optional[np.ndarray] = None
    #: Each unit's predicted classes, for ``diversity='classes'``: ``(N,
    #: C)`` shares of pixels per class (regions), or ``(N,)`` the class of
    #: each pixel; None otherwise.
    classes: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.items)

    def groups(self) -> Iterator[np.ndarray]:
        """The rows of each item, in table order."""
        if not len(self.items):
            return
        starts = np.flatnonzero(np.diff(self.items, prepend=-1))
        yield from np.split(np.arange(len(self.items)), starts[1:])

    def rows(self, keep: np.ndarray) -> 'UnitTable':
        """The table of the rows ``keep`` (in their order)."""
        return UnitTable(
            self.items[keep],
            None if self.scores is None else self.scores[keep],
            None if self.corners is None else self.corners[keep],
            None if self.classes is None else self.classes[keep])


@dataclass
class Query:
    """What a round asks labels for.

    Attributes:
        indices (np.ndarray): Pool positions queried, in pick order.
        scores (dict[int, float], optional): The score recorded per pool
            position (every candidate for item queries, the best unit of
            each queried image for region and pixel queries).
        info (dict): Facts about the round (strategy, time, ...).
        units (dict[int, dict], optional): Region and pixel queries: per
            pool position, ``corners`` ``(K, 2)`` and ``scores`` ``(K,)``
            of its units (arrays), best first. None: the whole items are
            queried.
    """
    indices: np.ndarray
    scores: Optional[Dict[int, float]] = None
    info: Dict = field(default_factory=dict)
    units: Optional[Dict[int, Dict]] = None

    def to_json(self) -> Dict:
        """``selection.json`` of a query that waits for a person (its
        units go to ``units.npz``, :func:`save_query_units`)."""
        return dict(
            indices=[int(i) for i in self.indices],
            scores={str(k): float(v)
                    for k, v in (self.scores or {}).items()},
            info=self.info)

    @classmethod
    def from_json(cls, data: Dict,
                  units: Optional[Dict[int, Dict]] = None) -> 'Query':
        """The query of ``selection.json`` and its ``units``; a selection
        written by an earlier version holds its units itself."""
        if units is None and data.get('units') is not None:
            units = {
                int(i): dict(
                    corners=np.asarray(u['corners'],
                                       np.int64).reshape(-1, 2),
                    scores=np.asarray(u['scores'], np.float64))
                for i, u in data['units'].items()
            }
        return cls(
            indices=np.asarray(data['indices'], dtype=np.int64),
            scores={int(k): v
                    for k, v in data['scores'].items()} or None,
            info=data['info'],
            units=units)


def save_query_units(path: str, units: Dict[int, Dict]) -> None:
    """The units of a query, compact: pool positions, unit counts, corners
    and scores, best first within each image."""
    positions = sorted(units)
    arrays = dict(
        index=np.asarray(positions, np.int64),
        count=np.asarray([len(units[i]['corners']) for i in positions],
                         np.int64),
        corners=np.concatenate(
            [np.asarray(units[i]['corners'], np.int64).reshape(-1, 2)
             for i in positions]) if positions else np.zeros((0, 2)),
        scores=np.concatenate(
            [np.asarray(units[i]['scores'], np.float64)
             for i in positions]) if positions else np.zeros(0))
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


def load_query_units(path: str) -> Dict[int, Dict]:
    """Read :func:`save_query_units`' file."""
    with np.load(path, allow_pickle=False) as data:
        index, counts = data['index'], data['count']
        corners, scores = data['corners'], data['scores']
    if counts.sum() != len(corners) or len(corners) != len(scores):
        raise RuntimeError(f'{path} is damaged: its unit counts disagree')
    ends = np.cumsum(counts)
    return {
        int(i): dict(
            corners=corners[e - c:e].astype(np.int64).reshape(-1, 2),
            scores=scores[e - c:e])
        for i, c, e in zip(index.tolist(), counts.tolist(), ends.tolist())
    }


class PixelLabels:
    """The pixel side of a pool labeled pixel by pixel (domain-adaptive
    segmentation): image sizes, what a query reveals, and the masks that
    ``LoadRevealedAnnotations`` reads.

    The masks are 1-bit PNGs, one per revealed image, in ``mask_dir``.
    ``EXPORTED`` there names the last round whose masks are all written,
    so a resume writes only what a kill left unwritten.

    Args:
        paths (Sequence[str]): The pool's image paths.
        mask_dir (str): Where the masks are exported.
        shapes (Sequence[tuple], optional): ``(height, width)`` of each
            image when known; else read from the files when first needed.
    """

    #: The export's own record in ``mask_dir`` (not an image stem: those
    #: never start with a dot here).
    EXPORTED = '.exported.json'

    def __init__(self,
                 paths: Sequence[str],
                 mask_dir: str,
                 shapes: Optional[Sequence[Shape]] = None) -> None:
        check_unique_stems(paths)
        self.paths = list(paths)
        self.mask_dir = mask_dir
        self._shapes = None if shapes is None else [tuple(s) for s in shapes]

    @property
    def shapes(self) -> List[Shape]:
        """``(height, width)`` of every pool image, read once."""
        if self._shapes is None:
            self._shapes = image_shapes(self.paths)
        return self._shapes

    def labeled_fraction(self, state: PoolState) -> float:
        return state.revealed.num_revealed() / max(
            sum(h * w for h, w in self.shapes), 1)

    def progress(self, state: PoolState) -> Dict:
        return dict(
            labeled_pixel_fraction=round(self.labeled_fraction(state), 6))

    def whole(self, indices: Sequence[int]) -> Iterator[Tuple[int, Reveal]]:
        """Reveals of the images ``indices`` entirely."""
        for index in indices:
            yield int(index), Reveal(self.shapes[index])

    def mask_path(self, index: int) -> str:
        return revealed_mask_path(self.mask_dir, self.paths[index])

    def export(self, state: PoolState,
               indices: Optional[Sequence[int]] = None) -> None:
        """Write the masks of ``indices`` (all when None) where
        ``LoadRevealedAnnotations`` reads them, then record the round as
        exported; a full export also removes masks of images no longer
        revealed (e.g. a deleted round). Called on the main process
        only."""
        os.makedirs(self.mask_dir, exist_ok=True)
        revealed = state.revealed.indices
        wanted = revealed if indices is None else [int(i) for i in indices]

        def write(index: int) -> None:
            ok, png = cv2.imencode(
                '.png', state.revealed.mask(index).view(np.uint8),
                [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_BILEVEL, 1])
            if not ok:
                raise OSError(f'cannot encode the mask of {self.paths[index]}')
            with atomic_write(self.mask_path(index)) as f:
                f.write(png.tobytes())

        _in_threads(write, wanted)
        if indices is None:
            # Only masks this export writes are removed: the mask names of
            # the pool's images, never another file of the folder (it may
            # be a link to one of the user's).
            keep = {osp.basename(self.mask_path(i)) for i in revealed}
            ours = {osp.basename(self.mask_path(i))
                    for i in range(len(self.paths))}
            for name in os.listdir(self.mask_dir):
                path = osp.join(self.mask_dir, name)
                if name in ours and name not in keep and \
                        osp.isfile(path) and not osp.islink(path):
                    os.remove(path)
        dump_json_atomic(dict(round=state.round),
                         osp.join(self.mask_dir, self.EXPORTED))

    def export_missing(self, state: PoolState) -> int:
        """On resume: write the masks that the last export did not finish
        (every mask when it left no record). Returns how many."""
        record = osp.join(self.mask_dir, self.EXPORTED)
        try:
            with open(record, encoding='utf-8') as f:
                exported = int(json.load(f)['round'])
        except (OSError, ValueError, KeyError, TypeError):
            exported = None
        if exported is None or exported > state.round:
            self.export(state)
            return len(state.revealed.indices)
        present = set(os.listdir(self.mask_dir))
        wanted = set(state.revealed.touched_after(exported))
        wanted.update(i for i in state.revealed.indices
                      if osp.basename(self.mask_path(i)) not in present)
        self.export(state, sorted(wanted))
        return len(wanted)


def _in_threads(function: Callable[[int], object],
                items: Sequence[int]) -> list:
    """``[function(i) for i in items]``, over :data:`IO_THREADS` threads
    when there are many."""
    return _thread_map(function, items,
                       IO_THREADS if len(items) >= 16 else 1)


def _in_order(units: Dict, ties: Optional[int]) -> Dict:
    """An image's ranked pixels (``ordered=False``) best first, ties by
    the image's tie seed ``ties``."""
    order = best_first(units['corners'], units['scores'],
                       units['shape'][1], ties)
    return {key: (value[order] if key in ('corners', 'scores', 'classes')
                  else value)
            for key, value in units.items() if key != 'ordered'}


def _thread_map(function: Callable[[int], object], items: Sequence[int],
                threads: int) -> list:
    """``[function(i) for i in items]``, over up to ``threads`` threads.

    The threads live as long as the process, so what a thread keeps for
    its next call (the ranking's workspaces, :mod:`mmsaal.regions`) is
    there for the next batch: fresh threads would fault in fresh pages.
    """
    threads = min(threads, len(items))
    if threads < 2:
        return [function(i) for i in items]
    return list(_executor(threads).map(function, items))


_EXECUTORS: Dict[int, Tuple[int, ThreadPoolExecutor]] = {}


def _executor(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` threads (a forked child, such as
    a dataloader worker, makes its own: it has none of its parent's
    threads)."""
    pid, pool = _EXECUTORS.get(threads, (None, None))
    if pid != os.getpid():
        pool = ThreadPoolExecutor(threads, thread_name_prefix='mmsaal')
        _EXECUTORS[threads] = (os.getpid(), pool)
    return pool


@UNITS.register_module(name='image')
class ImageUnits:
    """Whole items: the budget counts items, and each scores one float.

    On a pool labeled pixel by pixel (``pixels``, a domain-adaptive target
    read through ``LoadRevealedAnnotations``) a queried image is revealed
    whole, recorded and exported like a region's.

    Args:
        budget (int | float): Items per round, a count or a fraction of
            the pool.
        pixels (PixelLabels, optional): The pool's pixel labels, when it
            is labeled pixel by pixel. Defaults to None.
    """

    granularity = 'image'
    #: Whether the pool must be labeled pixel by pixel (its train pipeline
    #: reading ``LoadRevealedAnnotations``), and ``budget`` is then a
    #: fraction of its pixels.
    needs_pixel_labels = False

    def __init__(self,
                 budget: Union[int, float],
                 pixels: Optional[PixelLabels] = None) -> None:
        self.budget = budget
        self.pixels = pixels

    @classmethod
    def from_settings(cls, settings,
                      pixels: Optional[PixelLabels]) -> 'ImageUnits':
        """The units an ``ActiveLearningSettings`` asks for
        (``granularity`` names the registered kind)."""
        return cls(settings.budget, pixels)

    def candidates(self, state: PoolState) -> np.ndarray:
        return state.unlabeled_indices()

    def round_budget(self, state: PoolState,
                     candidates: np.ndarray) -> Budget:
        total = min(count(self.budget, state.pool_size), len(candidates))
        return Budget(total, min_candidates=total)

    def needs_scoring(self, sampler) -> bool:
        return sampler.needs_model

    def prepare(self, sampler, state: PoolState, budget: Budget,
                ties: Optional[int] = None) -> None:
        """Set what :meth:`score_batch` needs to know of the round
        (``ties``: the seed of its order among equal scores)."""

    def score_batch(self, sampler, model, data_batch: dict) -> List[float]:
        return [float(s) for s in sampler.score_batch(model, data_batch)]

    def start_batch(self, sampler, model, data_batch: dict) -> list:
        """A round scores each batch with this, then, when set,
        :attr:`finish_batch` of what it returned, beside the next batches'
        scoring (:func:`~mmsaal.rounds.score.score_candidates`)."""
        return self.score_batch(sampler, model, data_batch)

    finish_batch = None

    def trim(self, scored: List) -> List:
        """What a rank sends of its scored candidates: all of them (a float
        each)."""
        return scored

    def table(self, candidates: np.ndarray,
              scored: Optional[List[float]]) -> UnitTable:
        return UnitTable(
            candidates,
            None if scored is None else np.asarray(scored, np.float64))

    def query(self, table: UnitTable, picked: np.ndarray,
              info: Dict) -> Query:
        # + 0.0: a score of -0.0 (0 times a negative) is recorded as 0.
        scores = None if table.scores is None else dict(
            zip(table.items.tolist(), (table.scores + 0.0).tolist()))
        return Query(table.items[picked], scores, info)

    def round_info(self) -> Dict:
        return {}

    def progress(self, state: PoolState) -> Dict:
        """What the round records of the labeled fraction beyond items."""
        return {} if self.pixels is None else self.pixels.progress(state)

    def reveal(self, state: PoolState, query: Query) -> Dict:
        """Label the query in ``state``; returns facts for the round."""
        if self.pixels is None:
            state.add_round(query.indices)
            return {}
        revealed = state.reveal_round(self.reveals(query))
        return dict(pixels_revealed=revealed, **self.progress(state))

    def reveals(self, query: Query) -> Iterator[Tuple[int, Reveal]]:
        """``(pool position, reveal)`` of what the query labels, one image
        at a time (whole images)."""
        if self.pixels is not None:
            yield from self.pixels.whole(query.indices)

    def labels_arrived(self, data_info: dict, query: Query,
                       index: int) -> bool:
        from mmsaal.rounds.pool_dataset import labels_present
        return labels_present(data_info)

    def round_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``revealed.npz`` (what the round revealed), for a pool labeled
        pixel by pixel."""
        if self.pixels is None:
            return {}
        return {
            'revealed.npz': lambda path: save_reveals(path,
                                                      self.reveals(query))
        }

    def query_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        return {}

    def export(self, state: PoolState,
               indices: Optional[Sequence[int]] = None) -> None:
        """Write what training reads of the labeled state: the masks of a
        pool labeled pixel by pixel (``indices``, or all); an item pool
        reaches the train sampler directly."""
        if self.pixels is not None:
            self.pixels.export(state, indices)

    def export_missing(self, state: PoolState) -> None:
        """On resume: what :meth:`export` had not finished."""
        if self.pixels is not None:
            self.pixels.export_missing(state)

    def describe(self, query: Query, state: PoolState) -> str:
        return (f'queried {len(query.indices)} of '
                f'{query.info["num_candidates"]} candidates in '
                f'{query.info["scoring_seconds"]:.1f}s; '
                f'{state.num_labeled}/{state.pool_size} labeled '
                f'({100 * state.num_labeled / state.pool_size:.1f}%).')


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
                _thread_map(prepare, range(len(maps)),
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
            return files

        def summary(path: str) -> None:
            dump_json_atomic(
                dict(
                    round=round_idx,
                    granularity=self.granularity,
                    size=1,
                    items=(dict(
                        index=index,
                        name=names[index],
                        pixels=len(chosen['scores']),
                        best=float(chosen['scores'][0]),
                        last=float(chosen['scores'][-1]))
                           for index, chosen in (query.units or {}).items()
                           if len(chosen['scores']))), path)

        files['regions.json'] = summary
        return files

    def query_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``regions.json``: the queried units of every image with their
        scores, what an annotator works from; ``units.npz``: the same,
        compact, for the run to resume from."""
        return {
            'regions.json': self._listing(round_idx, query, names),
            'units.npz': lambda path: save_query_units(path, query.units
                                                       or {})
        }

    def _listing(self, round_idx: int, query: Query,
                 names: Sequence[str]) -> Writer:
        """The writer of ``regions.json`` with every queried unit (as a
        stream, one image a line)."""
        side = self.side

        def regions(path: str) -> None:
            dump_json_atomic(
                dict(
                    round=round_idx,
                    granularity=self.granularity,
                    size=side,
                    items=(dict(
                        index=index,
                        name=names[index],
                        # [y, x, height, width] in label-map pixels
                        regions=[[y, x, side, side]
                                 for y, x in np.asarray(
                                     chosen['corners']).tolist()],
                        scores=np.asarray(chosen['scores'],
                                          np.float64).tolist())
                           for index, chosen in (query.units or {}).items())
                ), path)

        return regions

    def describe(self, query: Query, state: PoolState) -> str:
        return (f'revealed {query.info["pixels_revealed"]} pixels in '
                f'{len(query.units)} of {query.info["num_candidates"]} '
                f'candidate images in {query.info["scoring_seconds"]:.1f}s; '
                f'{100 * self.pixels.labeled_fraction(state):.2f}% of the pool\'s '
                f'pixels labeled.')


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


def pick_units(sampler, table: UnitTable, budget: Budget,
               rng: np.random.Generator,
               ties: Optional[int] = None) -> np.ndarray:
    """The rows of ``table`` the round labels, through the pool sampler's
    own :meth:`select` (top-k, diversity, ...).

    Pool-wide, the sampler picks ``budget.total`` among the pool's best
    units (the budget, or :data:`DIVERSITY_CANDIDATES` times it with
    diversity); with a share per item, it picks each item's share among
    that item's units. Each image's list is its own greedy order, so a
    pool-wide top-k equals one greedy pass over the whole pool (units of
    different images never overlap). Equal units (the same score and
    classes) are ordered by ``ties``' keys of their rows
    (:func:`~mmsaal.selection.tie_order`) before the sampler sees them, so
    its ties go in that seeded order; without ``ties``, to the lower pool
    position, then the earlier unit.
    """
    keys = None if ties is None or table.scores is None else \
        tie_keys(ties, np.arange(len(table)))

    def select(rows, budget: int) -> np.ndarray:
        if keys is not None:
            rows = rows[tie_order(
                table.scores[rows], keys[rows],
                None if table.classes is None else table.classes[rows])]
        # classes only when there are some: a sampler written before them
        # need not take the argument.
        extra = {} if table.classes is None else dict(
            classes=table.classes[rows])
        scores = None if table.scores is None else table.scores[rows]
        num = len(table.items[rows])
        return rows[np.asarray(
            sampler.select(scores, num, min(budget, num), rng, **extra),
            dtype=np.int64)]

    if budget.per_item is None:
        rows = np.arange(len(table))
        if table.scores is not None and sampler.diversity:
            among = DIVERSITY_CANDIDATES * budget.total
            if len(rows) > among:
                rows = np.sort(top_k(table.scores, among, keys))
        return select(rows, budget.total)
    picked = [
        select(rows, budget.per_item(int(table.items[rows[0]])))
        for rows in table.groups()
    ]
    return np.concatenate(picked) if picked else np.zeros(0, np.int64)


def check_unique_stems(paths: Sequence[str]) -> None:
    """Masks are named by image stem: two pool images may not share one."""
    seen: Dict[str, str] = {}
    for path in paths:
        stem = osp.splitext(osp.basename(path))[0]
        if stem in seen:
            raise ValueError(
                f'{seen[stem]} and {path} share the file name {stem!r}; '
                f'region queries name revealed masks by file name, so pool '
                f'images need distinct names')
        seen[stem] = path


def image_shapes(paths: Sequence[str]) -> List[Shape]:
    """``(height, width)`` of each image, from the file headers."""
    return [(height, width) for width, height in image_sizes(paths)]
