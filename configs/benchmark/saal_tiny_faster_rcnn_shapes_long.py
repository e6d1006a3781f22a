# The detection demo with a schedule long enough for strategies to differ
# (twice the demo's epochs per round, mAP well off the floor by the last
# round), for strategy benchmarks:
#   python tools/benchmark_al.py configs/benchmark/saal_tiny_faster_rcnn_shapes_long.py \
#       --strategies saal entropy least_confidence random --seeds 0 1 2
_base_ = ['../demo/saal_tiny_faster_rcnn_shapes.py']
epochs_per_round = 12
active_learning = dict(epochs_per_round=epochs_per_round)
train_cfg = dict(val_interval=epochs_per_round)
