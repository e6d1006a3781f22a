# Copyright (c) mmsaal contributors. All rights reserved.
"""Image classification (MMPretrain) as the rounds see it."""
from typing import List, Optional, Sequence

import numpy as np

from .base import Task, class_name


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

    @classmethod
    def predicts(cls, prediction) -> bool:
        return 'pred_score' in prediction and 'seg_logits' not in prediction

    @classmethod
    def uncertainty(cls, sampler, prediction) -> float:
        """From the class probabilities (mmpretrain's ``pred_score``)."""
        return sampler.score_classes(prediction.pred_score.float())
