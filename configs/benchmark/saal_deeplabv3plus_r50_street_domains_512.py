# Benchmark only (tools/benchmark_scoring.py): DeepLabV3+ R50-D8 of
# saal_deeplabv3plus_r101_gta2cityscapes.py (depth 50, plain BN, no ImageNet
# download) scoring the generated target pool at 256x512
# (`python tools/misc/generate_demo_data.py data/bench_seg --task seg
# --image-size 256 --num-trainval 8`), so it runs offline.
_base_ = ['../saal_deeplabv3plus_r101_gta2cityscapes.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(depth=50, norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg),
    data_preprocessor=dict(size=(256, 512)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# Training at the generated resolution: no resize, the base's crop and
# flip (unrevealed target pixels become 255 before them).
augmentation = [
    dict(type='RandomCrop', crop_size=(256, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(datasets=[
    dict(
        type='mmsaal.GTAVDataset',
        data_root='data/bench_seg/gta/',
        data_prefix=dict(img_path='images', seg_map_path='labels'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations')] + augmentation),
    dict(
        type='CityscapesDataset',
        data_root='data/bench_seg/cityscapes/',
        data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='mmsaal.LoadRevealedAnnotations')] +
        augmentation)
]))
val_dataloader = dict(
    dataset=dict(
        data_root='data/bench_seg/cityscapes/', pipeline=test_pipeline))
test_dataloader = val_dataloader
