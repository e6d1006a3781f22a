# SAAL with RetinaNet R50-FPN on PASCAL VOC07+12 (MI-AOD / PPAL protocol).
_base_ = [
    'mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py',
    './_base_/active_learning.py',
]
active_learning = dict(
    pool_sampler=dict(type='SAALSampler', perturb_scope='head'),
    epochs_per_round=4,
    reset_each_round=True,
    pool_dataloader=dict(batch_size=4, num_workers=2))
train_cfg = dict(val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
