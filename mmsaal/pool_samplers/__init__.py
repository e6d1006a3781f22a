# Copyright (c) mmsaal contributors. All rights reserved.
from .base import BasePoolSampler
from .random_sampler import RandomSampler
from .ripu import RIPUSampler
from .saal import SAALSampler
from .uncertainty import (EntropySampler, LeastConfidenceSampler,
                          MarginSampler)

__all__ = [
    'BasePoolSampler', 'RandomSampler', 'SAALSampler', 'EntropySampler',
    'LeastConfidenceSampler', 'MarginSampler', 'RIPUSampler'
]
