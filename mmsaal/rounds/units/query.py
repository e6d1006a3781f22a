# Copyright (c) mmsaal contributors. All rights reserved.
"""The values a round passes between its steps: the :class:`Budget`, the
:class:`UnitTable` a sampler selects from, and the :class:`Query`."""
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Optional, Union

import numpy as np


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
        units go to ``units.npz``, :func:`~mmsaal.pool.save_query_units`)."""
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
