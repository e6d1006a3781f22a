# Copyright (c) mmsaal contributors. All rights reserved.
"""Labels come from the dataset's ground truth: the benchmark's oracle."""
from typing import Optional

import numpy as np

from mmsaal.pool import PoolState, draw_initial_set
from mmsaal.registry import ORACLES
from mmsaal.rounds.pool_dataset import PoolItems
from mmsaal.rounds.units import Query
from mmsaal.utils.errors import FieldError
from .base import BaseOracle, LabelingContext


@ORACLES.register_module(name=['SimulatedOracle', 'simulated'])
class SimulatedOracle(BaseOracle):
    """Labels come from the dataset's ground truth at once
    (``active_learning.oracle='simulated'``, the default). The initial set
    is a uniform draw, or with ``initial_balanced`` the same number of
    each class.

    Args:
        context (LabelingContext): Of the run; ``pool`` alone is needed.
    """

    name = 'simulated'

    def __init__(self, context: LabelingContext) -> None:
        super().__init__(context)
        self.balanced = context.initial_balanced

    def check_pool(self, state: PoolState) -> None:
        """Every item needs its ground truth to be revealed."""
        items = self.items or PoolItems.of(self.pool)
        missing = np.flatnonzero(~items.labeled).tolist()
        if missing:
            raise ValueError(
                f'{len(missing)} pool items have no labels (e.g. '
                f'{state.item_names[missing[0]]}): the simulated oracle '
                f"reveals ground truth. Use active_learning.oracle='human' "
                f'to label the queries yourself.')

    def initial_set(self, state: PoolState, size: int,
                    may_start_empty: bool) -> np.ndarray:
        """A uniform draw of ``size`` items with the round-0 generator;
        ``balanced``, the same number of each class (SAAL's reference
        starts CIFAR-10 from 2 images a class)."""
        if not self.balanced:
            return draw_initial_set(state.pool_size, size, state.round_rng(0))
        classes = (self.items or PoolItems.of(self.pool)).classes
        return draw_balanced_set(classes, size, state.round_rng(0))

    def pending(self, round_idx: int) -> Optional[Query]:
        return None

    def request(self, round_idx: int, query: Query, model=None) -> None:
        """The ground truth is there already: nothing to ask."""

    def wait_for_labels(self, round_idx: int, query: Query) -> None:
        """The ground truth is there already: nothing to wait for."""


def draw_balanced_set(classes: Optional[np.ndarray], size: int,
                      rng: np.random.Generator) -> np.ndarray:
    """``size // C`` items of each of the ``C`` classes, drawn uniformly
    within each class (class by class in order), then the rest of ``size``
    uniformly from the items left."""
    if classes is None:
        raise FieldError(
            'ActiveLearningHook.initial_balanced=True draws the same number '
            'of items of each class, and the pool items have no class '
            '(gt_label, as classification datasets give): set '
            'initial_balanced=False.')
    names = np.unique(classes)
    per = size // len(names)
    chosen = []
    for name in names:
        members = np.flatnonzero(classes == name)
        if len(members) < per:
            raise FieldError(
                f'ActiveLearningHook.initial_balanced: class {int(name)} has '
                f'{len(members)} pool items, fewer than the {per} a class '
                f'that initial_labeled={size} asks for: lower it.')
        chosen.extend(rng.choice(members, size=per, replace=False).tolist())
    rest = np.setdiff1d(np.arange(len(classes)), chosen)
    chosen.extend(rng.choice(rest, size=size - len(chosen),
                             replace=False).tolist())
    return np.sort(np.asarray(chosen, np.int64))
