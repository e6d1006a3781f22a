# Copyright (c) mmsaal contributors. All rights reserved.
from .config import setup_active_learning

__all__ = ['setup_active_learning']
