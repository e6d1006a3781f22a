# Copyright (c) mmsaal contributors. All rights reserved.
from .classification import write_digits, write_shape_crops
from .street_domains import STREET_LABEL_IDS, generate_street_domains
from .voc_shapes import (CLUTTER_CLASSES, SHAPE_CLASSES,
                         generate_voc_shapes)

__all__ = [
    'SHAPE_CLASSES', 'CLUTTER_CLASSES', 'generate_voc_shapes',
    'STREET_LABEL_IDS', 'generate_street_domains', 'write_digits',
    'write_shape_crops'
]
