# Copyright (c) mmsaal contributors. All rights reserved.
"""The labels of an MMSegmentation dataset: a label map an image, where the
dataset reads it (``seg_map_path``)."""
from typing import Dict, List

import cv2
import numpy as np

from mmsaal.utils import WorkDirError
from . import base
from .base import LabelFiles, Written


def reads_label_maps(dataset_type: type) -> bool:
    """Whether a dataset class is an MMSegmentation dataset."""
    try:
        from mmseg.datasets import BaseSegDataset
    except ImportError:
        return False
    return isinstance(dataset_type, type) and issubclass(
        dataset_type, BaseSegDataset)


class LabelMaps(LabelFiles):
    """A person labels a queried image (or its queried regions) by saving
    its label map where the dataset reads it; Label Studio's polygons are
    painted into that map (its other pixels kept)."""

    kind = 'maps'

    @classmethod
    def how(cls, work_dir: str) -> str:
        return ('Label them: save each queried image\'s label map where the '
                'dataset reads it (seg_map_path in query.json; for region '
                'queries, labeling inside the regions of regions.json is '
                'enough)')

    def write_maps(self, maps: Dict[str, np.ndarray],
                   round_idx: int) -> Written:
        """Write ``{label map path: labels}`` as PNGs, each after a copy
        of the map it replaces (``<map>.round_XX.bak``)."""
        backups: List[str] = []
        for path, labels in sorted(maps.items()):
            ok, png = cv2.imencode('.png', labels)
            if not ok:
                raise WorkDirError(f'cannot encode the label map {path}')
            base.write_label_file(png.tobytes(), path, round_idx, backups)
        return Written(len(maps), 0, [], backups, 'the label maps')

    def write_boxes(self, checked, images: List[int], replace: bool,
                    round_idx: int) -> Written:
        raise WorkDirError(self._refusal('boxes'))

    def write_classes(self, classes: Dict[str, str],
                      round_idx: int) -> Written:
        raise WorkDirError(self._refusal('class'))

    def _refusal(self, given: str) -> str:
        return (f'the pool dataset {self.cfg.get("type")} is labeled by '
                f'label maps, not by {given}: save each queried image\'s '
                f'label map where the dataset reads it.')
