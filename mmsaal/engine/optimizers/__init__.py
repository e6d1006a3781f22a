# Copyright (c) mmsaal contributors. All rights reserved.
from .sam_optim_wrapper import SAMOptimWrapper, batch_norm_statistics_kept

__all__ = ['SAMOptimWrapper', 'batch_norm_statistics_kept']
