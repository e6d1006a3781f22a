# SAAL with Faster R-CNN R50-FPN on PASCAL VOC07+12 trainval, tested on
# VOC07 test, in the MI-AOD / PPAL protocol (_base_/voc_protocol.py).
_base_ = [
    'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
    './_base_/voc_protocol.py',
]
active_learning = dict(
    pool_sampler=dict(
        rho=0.05, perturbation='adaptive', score='max', score_thr=0.3))
train_cfg = dict(val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
