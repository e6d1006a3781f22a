# A second two-domain set for strategy benchmarks, one the methods were not
# tuned on: the 'dusk' street style (other palettes in both domains, a rare
# person class, void side pillars instead of a bottom band) at 48x160.
#   python tools/misc/generate_demo_data.py data/demo_seg_dusk --task seg \
#       --style dusk --image-size 48 --width 160
#   python tools/benchmark_al.py configs/benchmark/saal_tiny_deeplabv3plus_street_dusk.py \
#       --strategies saal random ripu --seeds 0 1 2
_base_ = ['../demo/saal_tiny_deeplabv3plus_street_domains.py']
root = 'data/demo_seg_dusk/'
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type='mmsaal.GTAVDataset',
            data_root=root + 'gta/',
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline={{_base_.source_pipeline}}),
        dict(
            type='CityscapesDataset',
            data_root=root + 'cityscapes/',
            data_prefix=dict(
                img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline={{_base_.target_pipeline}})
    ]))
val_dataloader = dict(dataset=dict(data_root=root + 'cityscapes/'))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size=(48, 160)))
