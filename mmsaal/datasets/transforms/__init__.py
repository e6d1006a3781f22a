# Copyright (c) mmsaal contributors. All rights reserved.
from .loading import (LoadRevealedAnnotations, reads_revealed_masks,
                      revealed_mask_path)

__all__ = [
    'LoadRevealedAnnotations', 'reads_revealed_masks', 'revealed_mask_path'
]
