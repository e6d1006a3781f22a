# Copyright (c) mmsaal contributors. All rights reserved.
from .ssd_head import SSDHead

__all__ = ['SSDHead']
