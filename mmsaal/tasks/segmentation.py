# Copyright (c) mmsaal contributors. All rights reserved.
"""Semantic segmentation (MMSegmentation) as the rounds see it."""
import os.path as osp
from typing import Optional, Union

from .base import Task


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

    @classmethod
    def predicts(cls, prediction) -> bool:
        return 'seg_logits' in prediction

    @classmethod
    def uncertainty(cls, sampler, prediction) -> float:
        """The mean of the sampler's pixel scores (from ``seg_logits``)."""
        return float(sampler.pixel_scores(prediction).mean())
