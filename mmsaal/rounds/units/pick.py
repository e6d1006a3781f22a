# Copyright (c) mmsaal contributors. All rights reserved.
"""The rows of a round's :class:`~.query.UnitTable` that it labels."""
from typing import Optional

import numpy as np

from mmsaal.selection import tie_keys, tie_order, top_k
from .query import Budget, UnitTable

#: With ``diversity``, each image offers this many times its share of
#: ranked regions (or pixels) to the diverse pick, and a pool-wide pick
#: chooses among this many times the budget of the pool's best units;
#: without it, exactly its share (the budget), as the pick is then the top
#: ones anyway.
DIVERSITY_CANDIDATES = 4


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
