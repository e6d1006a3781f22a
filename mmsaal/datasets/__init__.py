# Copyright (c) mmsaal contributors. All rights reserved.
from .samplers import *  # noqa: F401,F403
