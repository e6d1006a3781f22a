# GTA5 -> Cityscapes for domain-adaptive active learning (RIPU's setting):
# GTA5 (labeled source, mmsaal.GTAVDataset after
# tools/dataset_converters/gta.py) and the Cityscapes train split (the target
# pool, labeled where queries reveal pixels) train together in paired
# batches; Cityscapes val is the benchmark.
source_type = 'mmsaal.GTAVDataset'
target_type = 'CityscapesDataset'
gta_root = 'data/gta/'
cityscapes_root = 'data/cityscapes/'
crop_size = (512, 1024)


augmentation = [
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
source_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2560, 1440), ratio_range=(0.5, 2.0),
         keep_ratio=True),
] + augmentation
# Unrevealed target pixels become 255 before any crop or flip.
target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmsaal.LoadRevealedAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0),
         keep_ratio=True),
] + augmentation
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,  # one source and one target image per GPU
    num_workers=4,
    persistent_workers=True,
    sampler=dict(
        type='mmsaal.LabeledSetSampler',
        shuffle=True,
        pool_index=1,
        balance=True),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type=source_type,
                data_root=gta_root,
                data_prefix=dict(img_path='images', seg_map_path='labels'),
                pipeline=source_pipeline),
            dict(
                type=target_type,
                data_root=cityscapes_root,
                data_prefix=dict(
                    img_path='leftImg8bit/train',
                    seg_map_path='gtFine/train'),
                pipeline=target_pipeline)
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=target_type,
        data_root=cityscapes_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
