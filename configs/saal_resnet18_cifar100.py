# SAAL on CIFAR-100, the reference code's CIFAR-100 protocol: 1,000 initial
# images, 10 a class; +100 a round; a pool subset of 10,000 per round;
# batch size 100; the rest as for CIFAR-10 (configs/saal_resnet18_cifar10.py,
# whose 100 rounds this keeps: the reference's README does not give
# CIFAR-100's count). CIFAR-100 under data/cifar100, as mmpretrain reads it.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
    './_base_/active_learning.py',
]
num_rounds = 100
epochs_per_round = 50
model = dict(head=dict(num_classes=100))
active_learning = dict(
    pool_sampler=dict(
        type='SAALSampler', perturb_scope='all', rho=0.05, diversity=True),
    initial_labeled=1000,
    initial_balanced=True,
    budget=100,
    num_rounds=num_rounds,
    epochs_per_round=epochs_per_round,
    pool_subset=10000,
    pool_dataloader=dict(batch_size=100, num_workers=2))
train_dataloader = dict(batch_size=100)
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
