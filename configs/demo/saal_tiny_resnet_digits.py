# Demo: SAAL for image classification on real data (`make demo-cls`):
# scikit-learn's 1,797 handwritten digits, a small ResNet trained from
# scratch, the reference's small protocol scaled to the set: 20 initial
# images, 2 a class; +10 a round; Adam, lr 1e-3, batch 10; 50 epochs a
# round (on the labeled images only, so the first rounds are short).
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/tiny_resnet_digits.py',
    '../_base_/datasets/digits.py',
    '../_base_/active_learning.py',
]
epochs_per_round = 50
active_learning = dict(
    # The reference's Max mode: the perturbed loss. The head's weights move
    # (the default); perturb_scope='all' moves every weight as the
    # reference does, ranks the images alike on this set (Spearman 0.997,
    # top-80 overlap 0.97, docs/en/user_guides/classification.md) and costs 56x more.
    pool_sampler=dict(type='SAALSampler'),
    initial_labeled=20,
    initial_balanced=True,
    budget=10,
    num_rounds=6,
    epochs_per_round=epochs_per_round,
    pool_dataloader=dict(batch_size=64, num_workers=0))
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0))
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', val_interval=epochs_per_round)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=epochs_per_round,
                    max_keep_ckpts=2))
randomness = dict(seed=0)
