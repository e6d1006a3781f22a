# Copyright (c) mmsaal contributors. All rights reserved.
from .loading import LoadRevealedAnnotations, revealed_mask_path

__all__ = ['LoadRevealedAnnotations', 'revealed_mask_path']
