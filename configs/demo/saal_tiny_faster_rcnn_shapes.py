# Demo: a few active-learning rounds of a tiny Faster R-CNN, trained from
# scratch on the synthetic shapes set (`make demo`), on 2 CPU cores.
_base_ = [
    '../_base_/models/tiny_faster_rcnn.py',
    '../_base_/datasets/voc_shapes.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/active_learning.py',
]
epochs_per_round = 6
active_learning = dict(
    initial_labeled=40,
    budget=20,
    num_rounds=3,
    epochs_per_round=epochs_per_round,
    pool_dataloader=dict(batch_size=8, num_workers=0))
train_cfg = dict(type='EpochBasedTrainLoop', val_interval=epochs_per_round)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
