# SAAL for plain (single-domain) segmentation on Cityscapes, image by image:
# 5% of the 2,975 train images to start, +5% per round, 4 rounds; each round
# retrains DeepLabV3+ R50-D8 from the initial weights (mmseg's recipe, poly
# LR over the round). Scores are the mean perturbed pixel loss of an image.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/datasets/cityscapes.py',
    './_base_/schedules/seg_al_schedule.py',
    './_base_/active_learning.py',
]
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(loss_decode=dict(avg_non_ignore=True)))
epochs_per_round = 100
active_learning = dict(
    pool_sampler=dict(type='SAALSampler', perturb_scope='head'),
    granularity='image',
    initial_labeled=0.05,
    budget=0.05,
    num_rounds=4,
    epochs_per_round=epochs_per_round,
    reset_each_round=True,
    pool_dataloader=dict(batch_size=1, num_workers=4))
# mmseg's Cityscapes loader is iteration-based (InfiniteSampler): rounds
# need epochs.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))
train_cfg = dict(val_interval=epochs_per_round)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=epochs_per_round,
        by_epoch=True,
        convert_to_iter_based=True)
]
