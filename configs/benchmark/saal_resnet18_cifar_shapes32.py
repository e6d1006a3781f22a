# The speed of classification scoring on the reference's own network:
# mmpretrain's CIFAR ResNet-18 on 32x32 colour images (the shape crops at
# 32 px stand in for CIFAR-10, which is not downloaded here), for
# tools/benchmark_scoring.py only.
_base_ = ['../saal_resnet18_cifar10.py']
data_root = 'data/demo_cls/shapes32/'
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
model = dict(head=dict(num_classes=6))
train_dataloader = dict(
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        data_prefix='train', pipeline=pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        data_prefix='test', pipeline=pipeline))
test_dataloader = val_dataloader
