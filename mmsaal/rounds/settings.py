# Copyright (c) mmsaal contributors. All rights reserved.
"""The ``active_learning`` fields of a config, written once: their types,
defaults, checks and docs. The hook, the round pipeline, the config set-up
and the docs' field table all read :class:`ActiveLearningSettings`."""
import dataclasses
from typing import List, Optional, Union

from mmsaal.utils.errors import FieldError
from .fields import check_fields

Amount = Union[int, float]


@dataclasses.dataclass
class ActiveLearningSettings:
    """The fields of ``active_learning`` (the ``ActiveLearningHook``'s
    arguments). Every value is checked when the settings are made, each
    error naming its field and the fix.

    Args:
        pool_sampler (dict | str): Config of the acquisition strategy, from
            the ``POOL_SAMPLERS`` registry, or only its name (its defaults).
            Defaults to ``dict(type='RandomSampler')``.
        initial_labeled (int | float): Size of the initial labeled set, a
            count (int) or a fraction of the pool (float). Defaults to 0.05.
        initial_labeled_file (str, optional): A JSON list or text file of
            pool positions or image paths to use as the initial set instead.
            Defaults to None.
        budget (int | float): Items labeled per round, a count (int) or a
            fraction of the pool (float). Defaults to 0.025.
        num_rounds (int): Number of acquisition rounds after round 0.
            Defaults to 5.
        epochs_per_round (int): Training epochs per round. Defaults to 1.
        pool_subset (int | float, optional): Score only a random subset of
            the unlabeled items each round (count or fraction of the
            unlabeled items), as SAAL's reference does to bound the cost.
            Defaults to None (score them all).
        reset_each_round (bool): Start every round from the weights,
            optimizer state and LR schedule that training started with,
            instead of fine-tuning the last round's model. Defaults to False.
        seed (int): Seed of the initial draw, the subsets and the random
            picks. Defaults to 0.
        pool_dataloader (dict): ``batch_size`` and ``num_workers`` of the
            scoring passes. Defaults to ``dict(batch_size=2, num_workers=0)``.
        pool_pipeline (list[dict], optional): Pipeline of the pool items
            while scoring. Defaults to None: the test dataloader's pipeline
            without its annotation loading (scoring never sees labels).
        state_dir (str): Folder under ``work_dir`` for the round files.
            Defaults to ``'rounds'``.
        granularity (str): What a query labels: ``'image'`` (whole items),
            or for segmentation ``'region'`` (square windows) or ``'pixel'``,
            revealed through ``LoadRevealedAnnotations``. For regions and
            pixels ``budget`` is a fraction of the pool's pixels per round.
            Defaults to ``'image'``.
        region_size (int): Side of a region, in label-map pixels. Defaults
            to 32.
        budget_per_image (bool): Regions/pixels: give every image the same
            share of the budget (RIPU's setting) instead of ranking units
            over the whole pool. Defaults to True.
        oracle (str | dict): Who labels a query. ``'simulated'``: the
            dataset's ground truth is revealed. ``'human'``: the query is
            written to ``{state_dir}/query_XX/`` (a COCO image list and a
            path list with scores; ``regions.json`` for region and pixel
            queries) and the run stops cleanly until its labels are in the
            dataset (``tools/import_labels.py``, or label maps that cover
            the queried regions), then ``--resume`` goes on; the initial set
            is then every item labeled at the start.
            ``dict(type='LabelStudioOracle', url=..., project=...)``: the
            same, with each round's images as tasks of a Label Studio
            project, pre-annotated and most informative first, whose
            annotations ``--resume`` pulls back (see
            :class:`~mmsaal.oracles.LabelStudioOracle`). Any oracle of the
            ``ORACLES`` registry, by name or as ``dict(type=NAME, ...)``.
            Defaults to ``'simulated'``.
        cold_start_rounds (int): Query the first this many rounds uniformly
            at random, as the random baseline does, and with
            ``pool_sampler`` after them. A score of the model's own
            confidence cannot see where it is confidently wrong, which is
            where a model trained on another domain stands before its first
            target labels. Defaults to 0.
        initial_balanced (bool): Draw the initial set with the same number
            of items of each class (``initial_labeled // num_classes``,
            the rest uniformly), as SAAL's reference starts CIFAR-10 from
            2 images a class; for pools whose items have a class
            (classification). Defaults to False.
    """
    pool_sampler: Optional[Union[dict, str]] = None
    initial_labeled: Amount = 0.05
    initial_labeled_file: Optional[str] = None
    budget: Amount = 0.025
    num_rounds: int = 5
    epochs_per_round: int = 1
    pool_subset: Optional[Amount] = None
    reset_each_round: bool = False
    seed: int = 0
    pool_dataloader: Optional[dict] = None
    pool_pipeline: Optional[List[dict]] = None
    state_dir: str = 'rounds'
    granularity: str = 'image'
    region_size: int = 32
    budget_per_image: bool = True
    oracle: Union[str, dict] = 'simulated'
    cold_start_rounds: int = 0
    initial_balanced: bool = False

    def __post_init__(self) -> None:
        check_fields(self.initial_labeled, self.budget, self.pool_subset,
                     self.num_rounds, self.epochs_per_round, self.granularity,
                     self.region_size, self.oracle, self.cold_start_rounds,
                     self.seed, self.pool_dataloader)
        if not isinstance(self.initial_balanced, bool):
            raise FieldError(
                f'ActiveLearningHook.initial_balanced must be True or False, '
                f'got {self.initial_balanced!r}')
        self.pool_dataloader = dict(dict(batch_size=2, num_workers=0),
                                    **(self.pool_dataloader or {}))

    @classmethod
    def names(cls) -> List[str]:
        """The field names, in order."""
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict:
        """Each field's default (before checks)."""
        return {field.name: field.default
                for field in dataclasses.fields(cls)}
