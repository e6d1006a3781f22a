# Copyright (c) mmsaal contributors. All rights reserved.
from .config import setup_active_learning
from .experiment import check_work_dir, record_experiment

__all__ = ['check_work_dir', 'record_experiment', 'setup_active_learning']
