# Copyright (c) mmsaal contributors. All rights reserved.
from .active_learning_hook import ActiveLearningHook

__all__ = ['ActiveLearningHook']
