# Copyright (c) mmsaal contributors. All rights reserved.
from .checkpoint import (AtomicLocalBackend, allow_mmengine_checkpoints,
                         checkpoint_to_resume, mmengine_safe_globals)
from .files import atomic_write, remove_temporaries, write_bytes_atomic
from .errors import DataError, FieldError, WorkDirError
from .work_dir import WorkDirLock, experiment_record, work_dir_config

__all__ = [
    'AtomicLocalBackend', 'allow_mmengine_checkpoints', 'atomic_write',
    'remove_temporaries', 'DataError', 'FieldError', 'WorkDirError', 'WorkDirLock', 'experiment_record',
    'checkpoint_to_resume', 'mmengine_safe_globals', 'work_dir_config',
    'write_bytes_atomic'
]
