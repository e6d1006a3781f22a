# Copyright (c) mmsaal contributors. All rights reserved.
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead

from mmsaal.registry import MODELS


@MODELS.register_module()
class SSDHead(MMDetSSDHead):
    """mmdet's ``SSDHead``, able to predict under mmdet 3.3.0.

    mmdet 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads
    ``self.loss_cls``, which ``SSDHead`` never builds (it skips
    ``AnchorHead.__init__``), so every validation of an SSD fails with
    ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``
    (open-mmlab/mmdetection#11780). SSD has no classification-loss module
    (its loss is the hard-negative-mined cross-entropy of ``loss_by_feat``):
    ``loss_cls = None`` says so, and prediction takes the softmax as it
    did before that check. Use ``type='mmsaal.SSDHead'`` in place of
    ``'SSDHead'``; everything else is mmdet's.
    """

    loss_cls = None
