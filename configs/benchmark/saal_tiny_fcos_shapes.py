# The detection demo with a tiny FCOS in place of its Faster R-CNN (the
# same ResNet-18 at 1/4 width and 32-channel FPN): an anchor-free detector
# to measure scoring paths on (tools/benchmark_scoring.py).
_base_ = ['./saal_tiny_retinanet_shapes.py']
model = dict(
    type='FCOS',
    bbox_head=dict(
        _delete_=True,
        type='FCOSHead',
        num_classes=3,
        in_channels=32,
        stacked_convs=2,
        feat_channels=32,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=8),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(_delete_=True))  # test_cfg: RetinaNet's, which FCOS reads
