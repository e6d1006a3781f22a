# Copyright (c) mmsaal contributors. All rights reserved.
import importlib.util

from .wrappers import *  # noqa: F401,F403

if importlib.util.find_spec('mmdet') is not None:
    from .dense_heads import SSDHead  # noqa: F401
