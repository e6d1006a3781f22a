# Copyright (c) mmsaal contributors. All rights reserved.
"""What every oracle answers, and what it is given."""
from dataclasses import dataclass
from typing import Any, Callable, List, NamedTuple, Optional, Sequence

import numpy as np


class AwaitingLabels(RuntimeError):
    """The query is written out; the run stops until its labels arrive.

    ``tools/train_al.py`` prints the message and exits with status 0.
    """


@dataclass
class LabelingContext:
    """What an oracle may need of the run; each takes what it uses.

    Args:
        pool: The train pool dataset (``get_data_info``, ``metainfo``).
        store (RoundStore): The round folders.
        units: What a query labels (``ImageUnits`` or ``PixelUnits``).
        names (Sequence[str]): The pool's item names.
        work_dir (str): The run's work dir, for the instructions.
        config (str): The run's config file, for the instructions.
        items (PoolItems, optional): The pool items read at the start.
        pool_dataset (callable, optional): Builds the pool under the
            scoring pipeline (for a model's pre-annotations).
        initial_balanced (bool): ``ActiveLearningHook.initial_balanced``.
    """
    pool: Any
    store: Any = None
    units: Any = None
    names: Sequence[str] = ()
    work_dir: str = ''
    config: str = ''
    items: Any = None
    pool_dataset: Optional[Callable[[], Any]] = None
    initial_balanced: bool = False


class Taken(NamedTuple):
    """What :meth:`BaseOracle.take_labels` brought into the dataset."""
    #: Queried images whose labels are in.
    labeled: int
    #: Images the query holds.
    queried: int
    #: Lines for the person (an image annotated twice, ...).
    notes: List[str]
    #: Where the labels came from, e.g. ``'Label Studio'``.
    source: str


class BaseOracle:
    """Who labels a query.

    Every oracle answers the same calls, so the round code has no branch
    on who labels: :meth:`initial_set` (round 0), :meth:`pending` (a query
    saved earlier, waiting for labels), :meth:`request` (ask for labels,
    with the model that queried, for pre-annotations) and
    :meth:`wait_for_labels` (go on only once they are there). A new oracle
    is one class registered in ``mmsaal.registry.ORACLES``; its keyword
    arguments are its config fields
    (``active_learning.oracle=dict(type='MyOracle', field=...)``).

    Args:
        context (LabelingContext): What the run gives every oracle.
    """

    #: The query's ``oracle`` in ``queried.json`` (empty: not recorded).
    name = ''
    #: Fields that say where the labels come from, not what is labeled:
    #: they may change on ``--resume``.
    FREE_FIELDS: Sequence[str] = ()
    #: Said when a config gives a field this oracle does not take.
    FIELDS_NOTE = ''

    def __init__(self, context: LabelingContext) -> None:
        self.context = context
        self.pool = context.pool
        self.items = context.items
        self.store = context.store
        self.units = context.units
        self.names = context.names
        self.work_dir = context.work_dir
        self.config = context.config

    def check_pool(self, state) -> None:
        """Refuse, before any training, a pool this oracle cannot label."""

    def initial_set(self, state, size: int,
                    may_start_empty: bool) -> np.ndarray:
        """The pool positions labeled in round 0."""
        raise NotImplementedError

    def pending(self, round_idx: int):
        """A query of ``round_idx`` saved earlier and waiting for labels,
        or None."""
        return None

    def request(self, round_idx: int, query, model=None) -> None:
        """Ask for the labels of ``query``; raise :class:`AwaitingLabels`
        to stop the run until they arrive."""

    def wait_for_labels(self, round_idx: int, query) -> None:
        """Return once the labels of ``query`` are in the dataset, else
        raise :class:`AwaitingLabels`."""

    @classmethod
    def take_labels(cls, store, pool_cfg: dict, fields: dict,
                    wait: float = 0) -> Optional[Taken]:
        """Bring labels this oracle keeps elsewhere (a labeling server)
        into the dataset, before the run builds any dataset (first rank;
        ``tools/train_al.py`` and ``tools/import_labels.py --from-oracle``
        call it), waiting up to ``wait`` seconds for the rest. None when
        there is nothing to take: the dataset's own files are read.

        Args:
            store (RoundStore): The run's round folders.
            pool_cfg (dict): The pool dataset's config, scoped.
            fields (dict): The oracle's config fields.
            wait (float): Seconds to wait for labels still missing.
        """
        return None

    @classmethod
    def wait_seconds(cls, fields: dict) -> float:
        """How long a stopped run waits in place for its labels (0: it
        stops at once)."""
        return 0.0
