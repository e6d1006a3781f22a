# The generated shapes pool (`make demo-data`) as a VOCDataset without its
# pipeline: the benchmark configs that score it at a VOC config's own
# resolution add that config's train_pipeline.
shapes_pool = dict(
    type='VOCDataset',
    data_root='data/demo/VOCdevkit/',
    metainfo=dict(classes=('circle', 'square', 'triangle')),
    ann_file='Shapes/ImageSets/Main/trainval.txt',
    data_prefix=dict(sub_data_root='Shapes/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=8))
