# SAAL with RetinaNet R50-FPN on PASCAL VOC07+12 (MI-AOD / PPAL protocol).
_base_ = [
    'mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py',
    './_base_/voc_protocol.py',
]
train_cfg = dict(val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
