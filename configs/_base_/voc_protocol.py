# The PASCAL VOC07+12 active-learning protocol of MI-AOD / PPAL: 5% of the
# 16,551 trainval images to start (827), +2.5% (413) per round, 5 rounds.
# Each round retrains the 1x VOC schedule (4 epochs over the 3x repeated
# labeled set) from the initial weights, as PPAL does.
# Leaf configs also set train_cfg.val_interval = epochs_per_round (mmdet's
# VOC bases define train_cfg, so it cannot live here).
_base_ = './active_learning.py'
active_learning = dict(
    pool_sampler=dict(type='SAALSampler', perturb_scope='head'),
    initial_labeled=0.05,
    budget=0.025,
    num_rounds=5,
    epochs_per_round=4,
    reset_each_round=True,
    pool_dataloader=dict(batch_size=4, num_workers=2))
