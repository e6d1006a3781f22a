# A second detection set for strategy benchmarks, one the methods were not
# tuned on: the 'clutter' shapes style (six classes, 'diamond' rare, smaller
# objects among distractor strokes and blobs, a fifth of the images empty).
# Harder than the shapes, so 16 epochs per round: with 12, random's final
# mAP was 0.31 (seed 0), barely off the floor.
#   python tools/misc/generate_demo_data.py data/demo_clutter --style clutter
#   python tools/benchmark_al.py configs/benchmark/saal_tiny_faster_rcnn_clutter.py \
#       --strategies saal entropy least_confidence random --seeds 0 1 2
_base_ = ['./saal_tiny_faster_rcnn_shapes_long.py']
data_root = 'data/demo_clutter/VOCdevkit/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'cross', 'ring', 'diamond'),
    palette=[(220, 20, 60), (0, 128, 255), (60, 180, 75), (255, 165, 0),
             (145, 30, 180), (70, 240, 240)])
epochs_per_round = 16
active_learning = dict(epochs_per_round=epochs_per_round)
train_cfg = dict(val_interval=epochs_per_round)
model = dict(roi_head=dict(bbox_head=dict(num_classes=6)))
# Empty images stay in the pool: which images hold no object is not known
# before they are labeled, and a query spent on one is part of the test.
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        filter_cfg=dict(filter_empty_gt=False, min_size=8)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
