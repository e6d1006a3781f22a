# Copyright (c) mmsaal contributors. All rights reserved.
from .config import check_fields, setup_active_learning, state_root
from .experiment import (check_work_dir, record_experiment,
                         start_refusal)

__all__ = [
    'check_fields', 'check_work_dir', 'record_experiment', 'setup_active_learning',
    'start_refusal', 'state_root'
]
