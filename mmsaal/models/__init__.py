# Copyright (c) mmsaal contributors. All rights reserved.
from .wrappers import *  # noqa: F401,F403
