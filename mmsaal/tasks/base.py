# Copyright (c) mmsaal contributors. All rights reserved.
"""What a task is to the rounds: how a pool item's labels are found in its
data info (as the dataset parsed it), so that the round code reads every
task the same way."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np


def class_name(label: int, classes: Sequence[str]) -> str:
    """A class index's name (its number when the dataset has no name)."""
    return classes[label] if label < len(classes) else str(label)


class Task:
    """The facts a round needs of a pool item of one task. A task is one
    class registered in ``mmsaal.registry.TASKS``: :func:`task_of` asks the
    registered tasks, highest ``priority`` first, which one an item's data
    info belongs to. This base is the task of an item no task claims.
    """

    #: Tasks with a higher priority are asked first.
    priority = 0
    #: Whether a queried item's classes are counted from its label map
    #: (decoded beside the next round's training), not its data info.
    counts_pixels = False

    @classmethod
    def matches(cls, info: dict) -> bool:
        """Whether an item's data info is of this task."""
        return False

    @classmethod
    def label_evidence(cls, info: dict) -> Union[bool, str]:
        """What says the item is labeled: a bool, or the label file that
        must exist."""
        return True

    @classmethod
    def item_class(cls, info: dict) -> Optional[int]:
        """The item's one class (a classification item), else None."""
        return None

    @classmethod
    def object_classes(cls, info: dict, classes: Sequence[str]) -> List[str]:
        """The class names of the item's labeled objects, for a round's
        class histogram (no image read)."""
        return []

    @classmethod
    def is_empty(cls, info: dict) -> Optional[bool]:
        """Whether the item holds nothing to label (a detection image with
        no object); None where that does not apply."""
        return None

    @classmethod
    def label_map(cls, info: dict) -> Optional[str]:
        """The item's label map file, where its labels are one."""
        return None

    @classmethod
    def query_fields(cls, info: dict) -> dict:
        """What a query's image entry (``query.json``) carries besides its
        path and size, for whoever labels it."""
        return {}


class DetectionTask(Task):
    """MMDetection items: ``instances`` with a ``bbox_label`` each; a VOC
    item is labeled once its ``xml_path`` exists."""

    @classmethod
    def matches(cls, info: dict) -> bool:
        return 'instances' in info or bool(info.get('xml_path'))

    @classmethod
    def label_evidence(cls, info: dict) -> Union[bool, str]:
        return info.get('xml_path') or True

    @classmethod
    def object_classes(cls, info: dict, classes: Sequence[str]) -> List[str]:
        return [class_name(int(i['bbox_label']), classes)
                for i in info.get('instances', [])
                if i.get('bbox_label') is not None]

    @classmethod
    def is_empty(cls, info: dict) -> Optional[bool]:
        return not info.get('instances')


class SegmentationTask(Task):
    """MMSegmentation items: a label map at ``seg_map_path`` (mmdet's items
    carry the key too, as None, beside their ``instances``)."""

    counts_pixels = True

    @classmethod
    def matches(cls, info: dict) -> bool:
        return bool(info.get('seg_map_path')) and 'instances' not in info

    @classmethod
    def label_evidence(cls, info: dict) -> Union[bool, str]:
        return info['seg_map_path']

    @classmethod
    def label_map(cls, info: dict) -> Optional[str]:
        return info['seg_map_path']

    @classmethod
    def query_fields(cls, info: dict) -> dict:
        return dict(seg_map_path=osp.abspath(info['seg_map_path']))


class ClassificationTask(Task):
    """MMPretrain items: a ``gt_label``."""

    @classmethod
    def matches(cls, info: dict) -> bool:
        return info.get('gt_label') is not None

    @classmethod
    def item_class(cls, info: dict) -> Optional[int]:
        label = info['gt_label']
        return int(np.asarray(label).reshape(-1)[0]) if np.size(
            label) == 1 else None

    @classmethod
    def object_classes(cls, info: dict, classes: Sequence[str]) -> List[str]:
        return [class_name(int(label), classes)
                for label in np.asarray(info['gt_label']).reshape(-1)]
