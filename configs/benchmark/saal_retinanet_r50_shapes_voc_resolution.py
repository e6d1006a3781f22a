# Benchmark only (tools/benchmark_scoring.py): the detector and the VOC test
# pipeline (1000x600) of saal_retinanet_voc.py, scoring the generated
# shapes pool (`make demo-data`) instead of VOC, so it runs offline.
_base_ = ['../saal_retinanet_voc.py']
model = dict(
    backbone=dict(init_cfg=None),  # no ImageNet download
    bbox_head=dict(num_classes=3))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='VOCDataset',
        data_root='data/demo/VOCdevkit/',
        metainfo=dict(classes=('circle', 'square', 'triangle')),
        ann_file='Shapes/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='Shapes/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline={{_base_.train_pipeline}}))
