# Strategy benchmark on the second classification set: 16x16 colour crops of
# one shape each (circle, square, triangle, cross, ring and a rare diamond)
# over textured backgrounds with a distractor stroke, as
# tools/misc/generate_demo_data.py data/demo_cls/shapes --task cls --style
# shapes writes them; made here, never used to develop the method. The
# digits demo's classifier on colour images, its own protocol: 12 initial
# images, 2 a class; +10 a round; 8 rounds.
_base_ = ['../demo/saal_tiny_resnet_digits.py']
data_root = 'data/demo_cls/shapes/'
model = dict(
    data_preprocessor=dict(
        num_classes=6, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    backbone=dict(in_channels=3),
    head=dict(num_classes=6))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
active_learning = dict(initial_labeled=12, num_rounds=8)
