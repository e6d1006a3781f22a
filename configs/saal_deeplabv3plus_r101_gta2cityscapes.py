# Domain-adaptive SAAL, region-based, GTA5 -> Cityscapes (RIPU's setting):
# GTA5 labeled, the Cityscapes train split starts unlabeled and gets 1% of
# its pixels per round in 32x32 regions (each image its equal share), 5
# rounds = 5%; DeepLabV3+ R101-D8, mIoU on Cityscapes val.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    './_base_/datasets/gta2cityscapes.py',
    './_base_/schedules/seg_al_schedule.py',
    './_base_/active_learning.py',
]
crop_size = (512, 1024)
model = dict(
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    data_preprocessor=dict(size=crop_size),
    # Unrevealed target pixels are 255: average over the labeled ones.
    decode_head=dict(loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(loss_decode=dict(avg_non_ignore=True)))
num_rounds = 5
epochs_per_round = 1
active_learning = dict(
    # SAAL x region impurity, spread over predicted classes (see
    # docs/en/advanced_guides/saal_segmentation_analysis.md); impurity_radius=None,
    # diversity=False is SAAL's score as the paper defines it.
    pool_sampler=dict(
        type='SAALSampler',
        perturb_scope='head',
        impurity_radius=1,
        diversity='classes'),
    # The first round at random, SAAL from the second: the source-only
    # model's confidence does not show where it is wrong on the target
    # (measured on two synthetic sets in the same doc). cold_start_rounds=0
    # scores from the first round, as RIPU's protocol does.
    cold_start_rounds=1,
    granularity='region',
    region_size=32,
    budget=0.01,
    budget_per_image=True,
    initial_labeled=0,
    num_rounds=num_rounds,
    epochs_per_round=epochs_per_round,
    pool_dataloader=dict(batch_size=1, num_workers=4))
train_cfg = dict(val_interval=epochs_per_round)
# One poly schedule over the whole run: queries arrive during training, as
# in RIPU, and the model keeps training on what they reveal.
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=(num_rounds + 1) * epochs_per_round,
        by_epoch=True,
        convert_to_iter_based=True)
]
