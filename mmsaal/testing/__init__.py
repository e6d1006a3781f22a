# Copyright (c) mmsaal contributors. All rights reserved.
from .naive_saal import (naive_classification_scores, naive_detection_scores,
                         naive_segmentation_maps)

__all__ = [
    'naive_classification_scores', 'naive_detection_scores',
    'naive_segmentation_maps'
]
