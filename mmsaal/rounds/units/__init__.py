# Copyright (c) mmsaal contributors. All rights reserved.
"""What a query labels: whole items, or regions or pixels of images.

An image is one unit; a region or a pixel is one unit of an image. Every
kind (a ``UNITS`` entry, one file each) answers the same questions, so one
round pipeline serves detection images, segmentation images, regions and
pixels:

- which items are candidates, and the round's :class:`Budget`;
- the scores of a batch, per item (``score_batch``), laid out as one
  :class:`UnitTable` that a pool sampler selects from (:func:`pick_units`);
- the :class:`Query` made of the selected units, what revealing it adds to
  the pool state, and the extra files of its round (written through
  :mod:`mmsaal.pool`).
"""
from .image import ImageUnits
from .pick import DIVERSITY_CANDIDATES, pick_units
from .pixel import PixelUnits
from .query import Budget, Query, UnitTable, count

__all__ = [
    'Budget', 'DIVERSITY_CANDIDATES', 'ImageUnits', 'PixelUnits', 'Query',
    'UnitTable', 'count', 'pick_units'
]
