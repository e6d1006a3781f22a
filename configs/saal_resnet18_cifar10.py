# SAAL on CIFAR-10, the protocol of the paper's reference code (main.py):
# 20 initial images, 2 a class; +10 a round for 100 rounds (1,020 labels at
# the end); each round scores a random subset of 2,000 pool images; batch
# size 10; Adam, lr 1e-3, betas (0.9, 0.999); 50 epochs a round; rho 0.05,
# ASAM, every weight perturbed, the reference's default mode Max_Diversity
# (the perturbed loss, k-means++ seeding over the scores). Its Max mode:
# pool_sampler.diversity=False; its Diff modes: pool_sampler.score='diff';
# SAM training: optim_wrapper.type=
# 'mmsaal.SAMOptimWrapper' (tools/benchmark_sam.py). CIFAR-10 under
# data/cifar10, as mmpretrain reads it.
_base_ = [
    'mmpretrain::resnet/resnet18_8xb16_cifar10.py',
    './_base_/active_learning.py',
]
num_rounds = 100
epochs_per_round = 50
active_learning = dict(
    pool_sampler=dict(
        type='SAALSampler', perturb_scope='all', rho=0.05, diversity=True),
    initial_labeled=20,
    initial_balanced=True,
    budget=10,
    num_rounds=num_rounds,
    epochs_per_round=epochs_per_round,
    pool_subset=2000,
    pool_dataloader=dict(batch_size=100, num_workers=2))
train_dataloader = dict(batch_size=10)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0))
param_scheduler = []
train_cfg = dict(val_interval=epochs_per_round)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=epochs_per_round,
                    max_keep_ckpts=2))
