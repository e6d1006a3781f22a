# Copyright (c) mmsaal contributors. All rights reserved.
from .voc_shapes import SHAPE_CLASSES, generate_voc_shapes

__all__ = ['SHAPE_CLASSES', 'generate_voc_shapes']
