# Copyright (c) mmsaal contributors. All rights reserved.
from .checkpoint import allow_mmengine_checkpoints, mmengine_safe_globals

__all__ = ['allow_mmengine_checkpoints', 'mmengine_safe_globals']
