# SAAL with SSD300 on PASCAL VOC07+12, in the Learning-Loss protocol:
# 1k initial images, +1k per cycle, up to 10k (9 rounds). mmdet repeats the
# set 10 times; one round here is 4 epochs of that.
_base_ = [
    'mmdet::pascal_voc/ssd300_voc0712.py',
    './_base_/voc_protocol.py',
]
active_learning = dict(
    initial_labeled=1000,
    budget=1000,
    num_rounds=9,
    pool_dataloader=dict(batch_size=8))
# mmdet 3.3.0's SSDHead cannot predict (it has no loss_cls, which
# BaseDenseHead reads): mmsaal.SSDHead is the same head with that fixed.
model = dict(bbox_head=dict(type='mmsaal.SSDHead'))
train_cfg = dict(val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
