# SAAL with Faster R-CNN R50-FPN on PASCAL VOC07+12 trainval (16,551 images),
# tested on VOC07 test, in the MI-AOD / PPAL protocol: 5% initial (827),
# +2.5% (413) per round, 5 rounds; each round retrains the 1x VOC schedule
# (4 epochs over the 3x repeated labeled set) from the ImageNet weights.
_base_ = [
    'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
    './_base_/active_learning.py',
]
active_learning = dict(
    pool_sampler=dict(
        type='SAALSampler',
        rho=0.05,
        perturbation='adaptive',
        score='max',
        perturb_scope='head',
        score_thr=0.3),
    initial_labeled=0.05,
    budget=0.025,
    num_rounds=5,
    epochs_per_round=4,
    reset_each_round=True,
    pool_dataloader=dict(batch_size=4, num_workers=2))
train_cfg = dict(val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
