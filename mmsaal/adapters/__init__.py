# Copyright (c) mmsaal contributors. All rights reserved.
"""Task adapters: they turn a detector or segmentor into per-instance loss
closures for :func:`mmsaal.perturbed_loss`. Each imports its own OpenMMLab
library lazily, so mmsaal works with either installed."""
from .base import perturbed_parameters

__all__ = ['perturbed_parameters']
