# Copyright (c) mmsaal contributors. All rights reserved.
"""Where a person's labels land: each pool dataset's own label files.

A pool dataset that a person labels names its writer in a class attribute
``label_files`` (a :class:`LabelFiles`): ``tools/import_labels.py`` and
the Label Studio oracle find it from the dataset's config
(:func:`label_files_of`), without building the dataset, and write through
it, so the data stays in the user's format:

- ``PoolCocoDataset``: the boxes into its COCO annotation file;
- ``PoolVOCDataset``: one ``Annotations/<id>.xml`` an image;
- ``PoolImageFolder``: the image moved into its class's folder;
- an MMSegmentation dataset: a label map an image (``LabelMaps``), which
  the person (or Label Studio's polygons) writes where the dataset reads
  it.

What a write replaces is kept as ``<file>.round_XX.bak`` (a move is
recorded in ``moves.round_XX.json``), and nothing is
written when the dataset holds the labels already. A new layout is one
file here beside its dataset.
"""
from .base import LabelFiles, Written, label_files_for, label_files_of
from .class_folders import ClassFolders
from .coco import CocoLabelFile
from .label_maps import LabelMaps
from .voc import VOCLabelFiles

__all__ = ['LabelFiles', 'Written', 'label_files_for', 'label_files_of',
           'CocoLabelFile', 'VOCLabelFiles', 'ClassFolders', 'LabelMaps']
