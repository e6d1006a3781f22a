# Copyright (c) mmsaal contributors. All rights reserved.
"""Checks of the ``active_learning`` fields, each error naming its field and
the fix."""
from typing import Optional, Union

from mmsaal.oracles import oracle_class
from mmsaal.registry import UNITS
from mmsaal.utils.errors import FieldError
from .units import count

Amount = Union[int, float]
#: What ``pool_dataloader`` may set (the scoring passes' loader).
POOL_DATALOADER_FIELDS = ('batch_size', 'num_workers')


def check_amount(field: str, amount) -> None:
    """A count > 0 (int) or a fraction in (0, 1] (float)."""
    ok = (isinstance(amount, int) and not isinstance(amount, bool)
          and amount > 0) or (isinstance(amount, float) and 0 < amount <= 1)
    if not ok:
        raise FieldError(
            f'ActiveLearningHook.{field} must be a count > 0 (int) or a '
            f'fraction in (0, 1] (float), got {amount!r}.')


def check_int(field: str, value, minimum: int) -> None:
    """An int >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or \
            value < minimum:
        raise FieldError(f'ActiveLearningHook.{field} must be an int '
                         f'>= {minimum}, got {value!r}')


def check_pool_dataloader(pool_dataloader) -> None:
    """``batch_size`` >= 1 and ``num_workers`` >= 0, nothing else."""
    if pool_dataloader is None:
        return
    if not isinstance(pool_dataloader, dict):
        raise FieldError(
            f'ActiveLearningHook.pool_dataloader must be a dict of '
            f'{POOL_DATALOADER_FIELDS}, got {pool_dataloader!r}')
    unknown = sorted(set(pool_dataloader) - set(POOL_DATALOADER_FIELDS))
    if unknown:
        raise FieldError(
            f'ActiveLearningHook.pool_dataloader.{unknown[0]} is not a field '
            f'of the scoring loader; it takes {POOL_DATALOADER_FIELDS}.')
    if 'batch_size' in pool_dataloader:
        check_int('pool_dataloader.batch_size', pool_dataloader['batch_size'],
                  1)
    if 'num_workers' in pool_dataloader:
        check_int('pool_dataloader.num_workers',
                  pool_dataloader['num_workers'], 0)


def check_fields(initial_labeled: Amount, budget: Amount,
                 pool_subset: Optional[Amount], num_rounds: int,
                 epochs_per_round: int, granularity: str, region_size: int,
                 oracle: str, cold_start_rounds: int = 0, seed: int = 0,
                 pool_dataloader: Optional[dict] = None) -> None:
    """The checks that need no pool."""
    check_int('seed', seed, 0)
    check_pool_dataloader(pool_dataloader)
    if initial_labeled != 0:
        check_amount('initial_labeled', initial_labeled)
    check_amount('budget', budget)
    if pool_subset is not None:
        check_amount('pool_subset', pool_subset)
    check_int('num_rounds', num_rounds, 0)
    check_int('epochs_per_round', epochs_per_round, 1)
    kind = UNITS.get(granularity) if isinstance(granularity, str) else None
    if kind is None:
        raise FieldError(f'ActiveLearningHook.granularity must be one '
                         f'of {tuple(UNITS.module_dict)}, got '
                         f'{granularity!r}')
    check_int('region_size', region_size, 1)
    if kind.needs_pixel_labels and not isinstance(budget, float):
        raise FieldError(
            f'ActiveLearningHook.budget={budget!r}: with '
            f"granularity='{granularity}' the budget is a fraction of the "
            f'pool\'s pixels per round, e.g. budget=0.01 (a float).')
    check_oracle(oracle)
    check_int('cold_start_rounds', cold_start_rounds, 0)
    if 0 < num_rounds <= cold_start_rounds:
        raise FieldError(
            f'ActiveLearningHook.cold_start_rounds={cold_start_rounds} '
            f'leaves none of the num_rounds={num_rounds} rounds to '
            f'pool_sampler: lower it below num_rounds, or query at random '
            f"throughout with pool_sampler='RandomSampler'.")


def check_oracle(oracle) -> None:
    """A registered oracle's name, or a dict of its ``type`` and fields
    (:func:`mmsaal.oracles.oracle_class` says what is wrong)."""
    oracle_class(oracle)


def check_against_pool(pool_size: int, initial_labeled: Amount,
                       initial_labeled_file: Optional[str], budget: Amount,
                       num_rounds: int, granularity: str,
                       may_start_empty: bool) -> None:
    """The checks that need the pool's size."""
    for field, amount in (('initial_labeled', initial_labeled),
                          ('budget', budget)):
        if isinstance(amount, int) and amount > pool_size:
            raise FieldError(
                f'ActiveLearningHook.{field}={amount} is larger than '
                f'the pool ({pool_size} items): lower it, or give a '
                f'fraction such as {field}=0.05.')
    if (initial_labeled_file is None
            and count(initial_labeled, pool_size) == 0
            and not may_start_empty):
        raise FieldError(
            f'ActiveLearningHook.initial_labeled={initial_labeled} '
            f'labels no item of a pool of {pool_size}: raise it (only '
            f'a pool beside labeled data, LabeledSetSampler.pool_index, '
            f'may start empty).')
    if (granularity == 'image' and num_rounds
            and count(budget, pool_size) == 0):
        raise FieldError(
            f'ActiveLearningHook.budget={budget} labels no item '
            f'per round of a pool of {pool_size}: raise it.')
