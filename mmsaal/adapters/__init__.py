# Copyright (c) mmsaal contributors. All rights reserved.
"""Task adapters: they turn a model into per-instance SAAL losses
``(L0, L1)`` for :func:`mmsaal.perturbed_loss`, one interface for every task
(:meth:`instance_losses`). They are registered in ``SAAL_ADAPTERS`` under
the model class they serve; each needs its own OpenMMLab library, and one
that is not installed is simply not registered."""
from mmsaal.registry import SAAL_ADAPTERS
from .base import perturbed_parameters


def find_adapter(model) -> type:
    """The adapter class registered for ``model``'s class or its nearest
    registered base class."""
    for cls in type(model).__mro__:
        adapter = SAAL_ADAPTERS.module_dict.get(cls.__name__)
        if adapter is not None:
            return adapter
    known = ', '.join(sorted(SAAL_ADAPTERS.module_dict))
    raise TypeError(
        f'SAAL has no adapter for {type(model).__name__}: it scores models '
        f'derived from {known}. Register one in mmsaal.registry.'
        f'SAAL_ADAPTERS under your model class name.')


__all__ = ['find_adapter', 'perturbed_parameters']
