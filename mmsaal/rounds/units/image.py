# Copyright (c) mmsaal contributors. All rights reserved.
"""Whole items as units (``granularity='image'``)."""
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from mmsaal.pool import (REVEALED_FILE, PixelLabels, PoolState, Reveal,
                         save_reveals)
from mmsaal.registry import UNITS
from .query import Budget, Query, UnitTable, count

Writer = Callable[[str], None]


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
            REVEALED_FILE:
            lambda path: save_reveals(path, self.reveals(query))
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
