# Copyright (c) mmsaal contributors. All rights reserved.
from .labeled_set_sampler import LabeledSetSampler, unwrap_repeats

__all__ = ['LabeledSetSampler', 'unwrap_repeats']
