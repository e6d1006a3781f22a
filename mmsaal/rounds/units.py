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
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import cv2
import numpy as np
import torch
from mmengine.utils import ProgressBar

from mmsaal.datasets.transforms import revealed_mask_path
from mmsaal.pool import IGNORE_INDEX, PoolState, dump_json_atomic, save_masks
from mmsaal.regions import (class_shares, rank_units, unit_area, units_mask,
                             units_per_image)

Shape = Tuple[int, int]
Writer = Callable[[str], None]
#: With ``diversity``, each image offers this many times its share of
#: ranked regions (or pixels) to the diverse pick; without it, exactly its
#: share, as the pick is then the top ones anyway.
DIVERSITY_CANDIDATES = 4


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
    #: ``(N, C)`` each unit's share of pixels per predicted class, for
    #: ``diversity='classes'``; None otherwise.
    classes: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.items)

    def groups(self) -> Iterator[np.ndarray]:
        """The rows of each item, in table order."""
        if not len(self.items):
            return
        starts = np.flatnonzero(np.diff(self.items, prepend=-1))
        yield from np.split(np.arange(len(self.items)), starts[1:])


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
            pool position, ``corners`` ``(K, 2)`` and ``scores`` of its
            units, best first. None: the whole items are queried.
    """
    indices: np.ndarray
    scores: Optional[Dict[int, float]] = None
    info: Dict = field(default_factory=dict)
    units: Optional[Dict[int, Dict]] = None

    def to_json(self) -> Dict:
        """``selection.json`` of a query that waits for a person."""
        data = dict(
            indices=[int(i) for i in self.indices],
            scores={str(k): float(v)
                    for k, v in (self.scores or {}).items()},
            info=self.info)
        if self.units is not None:
            data['units'] = {
                str(i): dict(
                    corners=np.asarray(u['corners']).tolist(),
                    scores=list(u['scores']))
                for i, u in self.units.items()
            }
        return data

    @classmethod
    def from_json(cls, data: Dict) -> 'Query':
        units = data.get('units')
        if units is not None:
            units = {
                int(i): dict(
                    corners=np.asarray(u['corners'],
                                       np.int64).reshape(-1, 2),
                    scores=list(u['scores']))
                for i, u in units.items()
            }
        return cls(
            indices=np.asarray(data['indices'], dtype=np.int64),
            scores={int(k): v
                    for k, v in data['scores'].items()} or None,
            info=data['info'],
            units=units)


class PixelLabels:
    """The pixel side of a pool labeled pixel by pixel (domain-adaptive
    segmentation): image sizes, the masks a query reveals, their PNG export
    for ``LoadRevealedAnnotations``.

    Args:
        paths (Sequence[str]): The pool's image paths.
        mask_dir (str): Where the masks are exported.
        shapes (Sequence[tuple], optional): ``(height, width)`` of each
            image when known; else read from the files when first needed.
    """

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

    def whole(self, indices: Sequence[int]
              ) -> Iterator[Tuple[int, np.ndarray]]:
        """Masks that reveal the images ``indices`` entirely."""
        for index in indices:
            yield int(index), np.ones(self.shapes[index], dtype=bool)

    def export(self, state: PoolState,
               indices: Optional[Sequence[int]] = None) -> None:
        """Write the masks of ``indices`` (all when None) as PNGs where
        ``LoadRevealedAnnotations`` reads them; a full export also removes
        masks of images no longer revealed (e.g. a deleted round). Called
        on the main process only."""
        os.makedirs(self.mask_dir, exist_ok=True)
        revealed = state.revealed.indices
        wanted = revealed if indices is None else list(indices)
        # A resume rewrites every mask.
        progress = ProgressBar(len(wanted)) if len(wanted) > 100 else None
        for index in wanted:
            if progress is not None:
                progress.update()
            path = revealed_mask_path(self.mask_dir, self.paths[index])
            tmp = f'{path[:-4]}.tmp{os.getpid()}.png'
            if not cv2.imwrite(tmp,
                               state.revealed.mask(index).astype(np.uint8)):
                raise OSError(f'cannot write {tmp}')
            os.replace(tmp, path)
        if indices is None:
            keep = {
                osp.basename(revealed_mask_path(self.mask_dir, self.paths[i]))
                for i in revealed
            }
            for name in os.listdir(self.mask_dir):
                if name not in keep:
                    os.remove(osp.join(self.mask_dir, name))


class ImageUnits:
    """Whole items: the budget counts items, and each scores one float.

    On a pool labeled pixel by pixel (``pixels``, a domain-adaptive target
    read through ``LoadRevealedAnnotations``) a queried image is revealed
    whole: its mask is all ones, recorded and exported like a region's.

    Args:
        budget (int | float): Items per round, a count or a fraction of
            the pool.
        pixels (PixelLabels, optional): The pool's pixel labels, when it
            is labeled pixel by pixel. Defaults to None.
    """

    granularity = 'image'

    def __init__(self,
                 budget: Union[int, float],
                 pixels: Optional[PixelLabels] = None) -> None:
        self.budget = budget
        self.pixels = pixels

    def candidates(self, state: PoolState) -> np.ndarray:
        return state.unlabeled_indices()

    def round_budget(self, state: PoolState,
                     candidates: np.ndarray) -> Budget:
        total = min(count(self.budget, state.pool_size), len(candidates))
        return Budget(total, min_candidates=total)

    def needs_scoring(self, sampler) -> bool:
        return sampler.needs_model

    def prepare(self, sampler, state: PoolState, budget: Budget) -> None:
        """Set what :meth:`score_batch` needs to know of the round."""

    def score_batch(self, sampler, model, data_batch: dict) -> List[float]:
        return [float(s) for s in sampler.score_batch(model, data_batch)]

    def table(self, candidates: np.ndarray,
              scored: Optional[List[float]]) -> UnitTable:
        return UnitTable(
            candidates,
            None if scored is None else np.asarray(scored, np.float64))

    def query(self, table: UnitTable, picked: np.ndarray,
              info: Dict) -> Query:
        scores = None if table.scores is None else dict(
            zip(table.items.tolist(), table.scores.tolist()))
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
        revealed = state.reveal_round(self.revealed_masks(query))
        return dict(pixels_revealed=revealed, **self.progress(state))

    def revealed_masks(self, query: Query
                       ) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """``(pool position, bool mask)`` of what the query revealed, one
        image at a time; the mask is None for an item without pixels."""
        if self.pixels is not None:
            yield from self.pixels.whole(query.indices)
            return
        for index in query.indices:
            yield int(index), None

    def labels_arrived(self, data_info: dict, query: Query,
                       index: int) -> bool:
        from mmsaal.rounds.oracles import labels_present
        return labels_present(data_info)

    def round_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``revealed.npz`` (what the round revealed), for a pool labeled
        pixel by pixel."""
        if self.pixels is None:
            return {}
        return {
            'revealed.npz':
            lambda path: save_masks(path, self.revealed_masks(query))
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

    def describe(self, query: Query, state: PoolState) -> str:
        return (f'queried {len(query.indices)} of '
                f'{query.info["num_candidates"]} candidates in '
                f'{query.info["scoring_seconds"]:.1f}s; '
                f'{state.num_labeled}/{state.pool_size} labeled '
                f'({100 * state.num_labeled / state.pool_size:.1f}%).')


class PixelUnits(ImageUnits):
    """Square regions or single pixels of segmentation images.

    The budget is a fraction of the pool's pixels per round, spent in
    units of ``region_size x region_size`` windows (or pixels). With
    ``budget_per_image`` every image gets its equal share (RIPU's
    setting), otherwise the units are ranked over the whole pool. What is
    revealed lives in the pool state, is persisted as
    ``round_XX/revealed.npz`` with the queried units in
    ``round_XX/regions.json``, and is exported as one PNG mask per image
    for ``LoadRevealedAnnotations``.

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

    def prepare(self, sampler, state: PoolState, budget: Budget) -> None:
        """How many units :meth:`score_batch` ranks per image: its share
        (times :data:`DIVERSITY_CANDIDATES` for a diverse pick), or
        pool-wide the whole budget, which no image can exceed."""
        self._state = state
        if budget.per_item is None:
            self._rank_cap = lambda index: budget.total
        else:
            factor = DIVERSITY_CANDIDATES if sampler.diversity else 1
            self._rank_cap = lambda index: budget.per_item(index) * factor

    def score_batch(self, sampler, model, data_batch: dict) -> List[Dict]:
        """Each image's best units, greedy, avoiding revealed pixels; with
        ``diversity='classes'``, also their shares of predicted classes."""
        if sampler.diversity == 'classes':
            maps = sampler.labeled_score_maps(model, data_batch)
        else:
            maps = [(m, None) for m in sampler.score_maps(model, data_batch)]
        ranked = []
        for sample, (score_map, labels) in zip(data_batch['data_samples'],
                                               maps):
            index = self.position[sample.img_path]
            if tuple(score_map.shape) != self.shapes[index]:
                raise RuntimeError(
                    f'{type(sampler).__name__} scored {sample.img_path} at '
                    f'{tuple(score_map.shape)}, not at its size '
                    f'{self.shapes[index]}')
            blocked = self._state.revealed.mask(index)
            units = rank_units(
                score_map.float(), self.granularity, self.region_size,
                self._rank_cap(index),
                None if blocked is None else torch.from_numpy(blocked))
            if labels is not None:
                units['classes'] = class_shares(labels, units['corners'],
                                                self.granularity,
                                                self.region_size)
            ranked.append(units)
        return ranked

    def table(self, candidates: np.ndarray,
              scored: Optional[List[Dict]]) -> UnitTable:
        items = [np.full(len(r['scores']), i, np.int64)
                 for i, r in zip(candidates, scored)]
        classes = None
        if scored and 'classes' in scored[0]:
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
            if scored else np.zeros((0, 2), np.int64), classes)

    def query(self, table: UnitTable, picked: np.ndarray,
              info: Dict) -> Query:
        picked = np.sort(picked)  # back to each image's best-first order
        units = {}
        for index in np.unique(table.items[picked]):
            rows = picked[table.items[picked] == index]
            units[int(index)] = dict(
                corners=table.corners[rows],
                scores=[float(v) for v in table.scores[rows]])
        return Query(
            np.asarray(sorted(units), dtype=np.int64),
            {i: u['scores'][0]
             for i, u in units.items()}, info, units)

    def round_info(self) -> Dict:
        return dict(granularity=self.granularity)

    def reveal(self, state: PoolState, query: Query) -> Dict:
        revealed = state.reveal_round(self.revealed_masks(query))
        return dict(
            images_queried=len(query.units or ()),
            pixels_revealed=revealed,
            **self.progress(state))

    def revealed_masks(self, query: Query
                       ) -> Iterator[Tuple[int, np.ndarray]]:
        """``(pool position, bool mask)`` of what the query covers, one
        image at a time: its units, or whole images (an initial set)."""
        if query.units is None:
            yield from self.pixels.whole(query.indices)
            return
        for index, chosen in query.units.items():
            yield index, units_mask(self.shapes[index], chosen['corners'],
                                    self.granularity, self.region_size)

    def labels_arrived(self, data_info: dict, query: Query,
                       index: int) -> bool:
        """Whether a person's label map covers the queried units: each
        region holds a labeled (not ``IGNORE_INDEX``) pixel, each queried
        pixel is labeled."""
        label_path = data_info['seg_map_path']
        if not osp.exists(label_path):
            return False
        labels = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        side = self.side
        return all(
            (labels[y:y + side, x:x + side] != IGNORE_INDEX).any()
            for y, x in np.asarray(query.units[index]['corners']).reshape(
                -1, 2))

    def round_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``revealed.npz`` (what the round revealed) and
        ``regions.json``."""
        return dict(
            super().round_files(round_idx, query, names),
            **self.query_files(round_idx, query, names))

    def query_files(self, round_idx: int, query: Query,
                    names: Sequence[str]) -> Dict[str, Writer]:
        """``regions.json``: the queried units of every image with their
        scores, what an annotator works from."""
        side = self.side

        def regions(path: str) -> None:
            dump_json_atomic(
                dict(
                    round=round_idx,
                    granularity=self.granularity,
                    size=side,
                    items=[
                        dict(
                            index=index,
                            name=names[index],
                            # [y, x, height, width] in label-map pixels
                            regions=[[int(y), int(x), side, side]
                                     for y, x in chosen['corners']],
                            scores=[float(v) for v in chosen['scores']])
                        for index, chosen in (query.units or {}).items()
                    ]), path)

        return {'regions.json': regions}

    def describe(self, query: Query, state: PoolState) -> str:
        return (f'revealed {query.info["pixels_revealed"]} pixels in '
                f'{len(query.units)} of {query.info["num_candidates"]} '
                f'candidate images in {query.info["scoring_seconds"]:.1f}s; '
                f'{100 * self.pixels.labeled_fraction(state):.2f}% of the pool\'s '
                f'pixels labeled.')


def pick_units(sampler, table: UnitTable, budget: Budget,
               rng: np.random.Generator) -> np.ndarray:
    """The rows of ``table`` the round labels, through the pool sampler's
    own :meth:`select` (top-k, diversity, ...).

    Pool-wide, the sampler picks ``budget.total`` among all units; with a
    share per item, it picks each item's share among that item's units.
    Each image's list is its own greedy order, so a pool-wide top-k equals
    one greedy pass over the whole pool (units of different images never
    overlap); ties go to the lower pool position, then the earlier unit.
    """
    def select(rows, budget: int) -> np.ndarray:
        # classes only when there are some: a sampler written before them
        # need not take the argument.
        extra = {} if table.classes is None else dict(
            classes=table.classes[rows])
        scores = None if table.scores is None else table.scores[rows]
        num = len(table.items[rows])
        return np.asarray(
            sampler.select(scores, num, min(budget, num), rng, **extra),
            dtype=np.int64)

    if budget.per_item is None:
        return select(slice(None), budget.total)
    picked = [
        rows[select(rows, budget.per_item(int(table.items[rows[0]])))]
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
    from PIL import Image
    shapes = []
    for path in paths:
        with Image.open(path) as img:
            shapes.append((img.height, img.width))
    return shapes
