# Copyright (c) mmsaal contributors. All rights reserved.
from .naive_saal import naive_detection_scores

__all__ = ['naive_detection_scores']
