# Copyright (c) mmsaal contributors. All rights reserved.
from .hooks import *  # noqa: F401,F403
from .training_reset import InitialTrainingState

__all__ = ['InitialTrainingState']
