# Copyright (c) mmsaal contributors. All rights reserved.
from .active_learning_hook import ActiveLearningHook
from .reproducible_resume_hook import ReproducibleResumeHook

__all__ = ['ActiveLearningHook', 'ReproducibleResumeHook']
