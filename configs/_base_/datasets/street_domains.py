# The bundled synthetic two-domain street set (`make demo-seg-data`): a
# "GTA5" source and a "Cityscapes" target in the real layouts, read by
# mmsaal.GTAVDataset and mmseg's CityscapesDataset, scored by IoUMetric.
_base_ = './gta2cityscapes.py'
gta_root = 'data/demo_seg/gta/'
cityscapes_root = 'data/demo_seg/cityscapes/'
augmentation = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
source_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
] + augmentation
target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmsaal.LoadRevealedAnnotations'),
] + augmentation
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(datasets=[
        dict(
            type='mmsaal.GTAVDataset',
            data_root=gta_root,
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=source_pipeline),
        dict(
            type='CityscapesDataset',
            data_root=cityscapes_root,
            data_prefix=dict(
                img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=target_pipeline)
    ]))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=cityscapes_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
