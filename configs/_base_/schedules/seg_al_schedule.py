# Epoch-based segmentation training for active-learning rounds (the hook
# queries between epochs): mmseg's SGD recipe, validation and a checkpoint
# at the end of every epoch. Leaves set `param_scheduler` (its length
# depends on their rounds) and `train_cfg.val_interval = epochs_per_round`.
# It includes mmseg's runtime, whose iteration-based logging it switches.
_base_ = 'mmseg::_base_/default_runtime.py'
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005),
    clip_grad=None)
train_cfg = dict(type='EpochBasedTrainLoop', val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=True)
