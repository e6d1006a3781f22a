# A small ResNet for 8x8 grey images (scikit-learn's digits): mmpretrain's
# CIFAR ResNet-18 (3x3 stem, no max pool; stages of stride 1, 2, 2, 2 take
# 8x8 to 1x1) at a quarter of its width, with BatchNorm; trains from
# scratch in seconds on a CPU.
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=10, mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
