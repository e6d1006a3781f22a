# Copyright (c) mmsaal contributors. All rights reserved.
from .gtav import GTAVDataset, label_ids_to_train_ids
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

__all__ = ['GTAVDataset', 'label_ids_to_train_ids']
