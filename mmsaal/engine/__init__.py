# Copyright (c) mmsaal contributors. All rights reserved.
from .hooks import *  # noqa: F401,F403
from .loops import ReproducibleEpochBasedTrainLoop, seed_worker
from .optimizers import SAMOptimWrapper
from .training_reset import InitialTrainingState

__all__ = [
    'InitialTrainingState', 'ReproducibleEpochBasedTrainLoop',
    'SAMOptimWrapper', 'seed_worker'
]
