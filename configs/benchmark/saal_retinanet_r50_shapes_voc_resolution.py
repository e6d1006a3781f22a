# Benchmark only (tools/benchmark_scoring.py): the detector and the VOC test
# pipeline (1000x600) of saal_retinanet_voc.py, scoring the generated
# shapes pool (`make demo-data`) instead of VOC, so it runs offline.
_base_ = ['../saal_retinanet_voc.py', '../_base_/datasets/voc_shapes_pool.py']
model = dict(
    backbone=dict(init_cfg=None),  # no ImageNet download
    bbox_head=dict(num_classes=3))
train_dataloader = dict(
    dataset=dict(
        _delete_=True, **_base_.shapes_pool,
        pipeline=_base_.train_pipeline))
