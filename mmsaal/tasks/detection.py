# Copyright (c) mmsaal contributors. All rights reserved.
"""Object detection (MMDetection) as the rounds see it."""
from typing import List, Optional, Sequence, Union

from .base import Task, class_name


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

    @classmethod
    def predicts(cls, prediction) -> bool:
        return 'pred_instances' in prediction

    @classmethod
    def uncertainty(cls, sampler, prediction) -> float:
        """From the detections' confidences (after NMS)."""
        return sampler.score_detections(
            prediction.pred_instances.scores.float())
