# Copyright (c) mmsaal contributors. All rights reserved.
"""Who labels a query: one registered class an oracle
(``mmsaal.registry.ORACLES``), chosen by ``active_learning.oracle``.

- ``'simulated'`` (:class:`SimulatedOracle`): the dataset's ground truth;
- ``'human'`` (:class:`HumanOracle`): the round writes its query, stops,
  and goes on once a person's labels are in the dataset;
- ``dict(type='LabelStudioOracle', url=..., project=...)``
  (:mod:`.label_studio`): the query becomes Label Studio tasks and the
  annotations come back by themselves.

A new oracle (CVAT, a CSV a person fills in) is one file beside these:
a :class:`BaseOracle` registered in ``ORACLES``, whose keyword arguments
are its config fields.
"""
import inspect
from typing import Tuple, Union

from mmsaal.registry import ORACLES
from mmsaal.utils.errors import FieldError
from .base import AwaitingLabels, BaseOracle, LabelingContext, Taken


def oracle_spec(oracle: Union[str, dict]) -> Tuple[str, dict]:
    """``(registered name, fields)`` of an ``active_learning.oracle``."""
    if isinstance(oracle, dict):
        fields = {k: v for k, v in oracle.items() if k != 'type'}
        return str(oracle.get('type', '')), fields
    return str(oracle), {}


def oracle_class(oracle: Union[str, dict]) -> type:
    """The registered class of an ``active_learning.oracle``, its fields
    checked against the class's arguments."""
    name, fields = oracle_spec(oracle)
    found = ORACLES.get(name) if name else None
    if found is None:
        names = sorted(ORACLES.module_dict)
        raise FieldError(
            f'ActiveLearningHook.oracle must be one of {names} (a name, or '
            f'dict(type=NAME, ...) with its fields), got {oracle!r}')
    taken = oracle_fields(found)
    unknown = sorted(set(fields) - set(taken))
    if unknown:
        raise FieldError(
            f'ActiveLearningHook.oracle.{unknown[0]} is not a field of '
            f'{found.__name__}; it takes {taken}{found.FIELDS_NOTE}.')
    return found


def oracle_fields(oracle: type) -> Tuple[str, ...]:
    """The config fields of an oracle class: its keyword arguments."""
    return tuple(
        p.name for p in inspect.signature(oracle).parameters.values()
        if p.name != 'context' and p.kind in (p.KEYWORD_ONLY,
                                              p.POSITIONAL_OR_KEYWORD))


def build_oracle(oracle: Union[str, dict],
                 context: LabelingContext) -> BaseOracle:
    """The oracle an ``active_learning.oracle`` names, for ``context``."""
    return oracle_class(oracle)(context, **oracle_spec(oracle)[1])


def free_fields() -> Tuple[str, ...]:
    """``active_learning.oracle.*`` fields that may change on resume: each
    registered oracle's ``FREE_FIELDS``."""
    return tuple(sorted({f'active_learning.oracle.{field}'
                         for oracle in ORACLES.module_dict.values()
                         for field in oracle.FREE_FIELDS}))


# The oracles register themselves (after the functions above, which the
# round code they import reads back).
from .human import HumanOracle, query_files, waiting_message  # noqa: E402
from .label_studio import LabelStudioOracle  # noqa: E402
from .simulated import SimulatedOracle, draw_balanced_set  # noqa: E402

__all__ = [
    'AwaitingLabels', 'BaseOracle', 'LabelingContext', 'Taken',
    'build_oracle', 'oracle_class', 'oracle_fields', 'oracle_spec',
    'free_fields', 'HumanOracle', 'LabelStudioOracle', 'SimulatedOracle',
    'draw_balanced_set', 'query_files', 'waiting_message'
]
