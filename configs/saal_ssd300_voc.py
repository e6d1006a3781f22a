# SAAL with SSD300 on PASCAL VOC07+12, in the Learning-Loss protocol:
# 1k initial images, +1k per cycle, up to 10k (9 rounds). mmdet repeats the
# set 10 times; one round here is 4 epochs of that.
_base_ = [
    'mmdet::pascal_voc/ssd300_voc0712.py',
    './_base_/active_learning.py',
]
active_learning = dict(
    pool_sampler=dict(type='SAALSampler', perturb_scope='head'),
    initial_labeled=1000,
    budget=1000,
    num_rounds=9,
    epochs_per_round=4,
    reset_each_round=True,
    pool_dataloader=dict(batch_size=8, num_workers=2))
train_cfg = dict(val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
