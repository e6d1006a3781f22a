# Copyright (c) mmsaal contributors. All rights reserved.
from .loading import LoadRevealedAnnotations, reads_revealed_masks

__all__ = ['LoadRevealedAnnotations', 'reads_revealed_masks']
