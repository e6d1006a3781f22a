# Copyright (c) mmsaal contributors. All rights reserved.
from .checkpoint import allow_mmengine_checkpoints, mmengine_safe_globals
from .work_dir import work_dir_config

__all__ = [
    'allow_mmengine_checkpoints', 'mmengine_safe_globals', 'work_dir_config'
]
