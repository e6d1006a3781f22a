"""Every shipped config runs as shipped: two rounds of the real
tools/train_al.py through a user config that inherits it, on small data
written in the layout the config reads (VOC07+12, Cityscapes and GTA5,
CIFAR's batches, class folders). Only what a CPU needs is overridden: a
small backbone, no pretrained weights (nothing is downloaded), small
images, one epoch a round, a few labels, a few images scored a round
(``pool_subset``)."""
import glob
import json
import os
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
from conftest import REPO, run_train_al

#: The demos run in their own end-to-end tests.
SHIPPED = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'benchmark', '*.py')))

#: VOC class names the shapes stand for.
VOC_NAMES = dict(circle='person', square='car', triangle='dog')

LOADERS = [
    f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader',
                                     'test_dataloader')
    for key in ('num_workers=0', 'persistent_workers=False')
] + ['active_learning.pool_dataloader.num_workers=0',
     'default_hooks.logger.interval=1']

#: Images scored a round (at least what the round's budget needs): scoring
#: the whole pool was half of a detector's run, and adds nothing to it.
POOL_SUBSET = 'active_learning.pool_subset=4'


def rounds(initial, budget, epochs=1) -> list:
    return [f'active_learning.num_rounds=2',
            f'active_learning.epochs_per_round={epochs}',
            f'active_learning.initial_labeled={initial}',
            f'active_learning.budget={budget}',
            f'train_cfg.val_interval={epochs}']


# ------------------------------------------------------------------ data
@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Every layout, small, written once for the module."""
    from mmsaal.datasets.synthetic import (generate_street_domains,
                                           generate_voc_shapes,
                                           write_shape_crops)
    root = tmp_path_factory.mktemp('shipped')
    out = {}
    # VOC07+12: the shapes, renamed to VOC classes, as VOC2007 and VOC2012.
    shapes = root / 'shapes'
    generate_voc_shapes(str(shapes), num_trainval=12, num_test=4,
                        image_size=64, seed=0)
    voc = root / 'voc' / 'VOCdevkit'
    for year in ('VOC2007', 'VOC2012'):
        shutil.copytree(shapes / 'VOCdevkit' / 'Shapes', voc / year)
        for xml in (voc / year / 'Annotations').glob('*.xml'):
            text = xml.read_text()
            for shape, name in VOC_NAMES.items():
                text = text.replace(f'<name>{shape}</name>',
                                    f'<name>{name}</name>')
            xml.write_text(text)
    out['voc'] = str(voc) + '/'
    out['shapes'] = str(shapes / 'VOCdevkit') + '/'
    clutter = root / 'clutter'
    generate_voc_shapes(str(clutter), num_trainval=12, num_test=4,
                        image_size=64, seed=0, style='clutter')
    out['clutter'] = str(clutter / 'VOCdevkit') + '/'
    street = root / 'street'
    generate_street_domains(str(street), num_source=6, num_target_train=8,
                            num_target_val=2, size=(48, 96), seed=0)
    out['street'] = str(street)
    crops = root / 'crops'
    write_shape_crops(str(crops), num_train=60, num_test=12, size=16)
    out['crops'] = str(crops) + '/'
    crops32 = root / 'crops32'
    write_shape_crops(str(crops32), num_train=60, num_test=12, size=32)
    out['crops32'] = str(crops32) + '/'
    for name, classes, key in (('cifar10', 10, 'labels'),
                               ('cifar100', 100, 'fine_labels')):
        out[name] = write_cifar(str(root / name), classes, key)
    return out


def write_cifar(root: str, classes: int, key: str) -> str:
    """CIFAR's python batches, as mmpretrain reads them: 3 images a class
    to train on, 1 to test."""
    rng = np.random.default_rng(0)
    base = 'cifar-10-batches-py' if classes == 10 else 'cifar-100-python'
    folder = osp.join(root, base)
    os.makedirs(folder)

    def batch(per_class):
        labels = [c for c in range(classes) for _ in range(per_class)]
        images = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        for i, c in enumerate(labels):  # a class is a colour
            images[i, :1024] //= 4
            images[i, (c % 3) * 1024:(c % 3 + 1) * 1024] |= 128 + c
        return {'data': images, key: labels}

    # CIFAR-10: five batches of one image a class; CIFAR-100: one file of
    # three a class.
    train = ([f'data_batch_{i}' for i in range(1, 6)] if classes == 10
             else ['train'])
    for name in train:
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump(batch(1 if classes == 10 else 3), f)
    with open(osp.join(folder, 'test_batch' if classes == 10 else 'test'),
              'wb') as f:
        pickle.dump(batch(1), f)
    return root + '/'


# ------------------------------------------------------------ overrides
def voc_options(root: str, scale='(96, 64)', pipelines=(2, 1)) -> list:
    train = 'train_dataloader.dataset.dataset.datasets'
    options = ['train_dataloader.dataset.times=1',
               'train_dataloader.batch_size=2']
    for i in (0, 1):
        options += [f'{train}.{i}.data_root={root}']
        if pipelines[0] is not None:
            options += [f'{train}.{i}.pipeline.{pipelines[0]}.scale={scale}']
    for loader in ('val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}']
        if pipelines[1] is not None:
            options += [f'{loader}.dataset.pipeline.{pipelines[1]}.scale='
                        f'{scale}']
    return options


R18_FPN = ['model.backbone.init_cfg=None', 'model.backbone.depth=18',
           'model.neck.in_channels=[64,128,256,512]']
#: Faster R-CNN's box head on 256 features, not 1024 (it scored 1000
#: proposals an image through a 12544x1024 layer).
SMALL_BOX_HEAD = ['model.roi_head.bbox_head.fc_out_channels=256']
#: The CIFAR ResNet-18 a quarter as wide: 16 stem and base channels.
QUARTER_CIFAR_R18 = ['model.backbone.stem_channels=16',
                     'model.backbone.base_channels=16',
                     'model.head.in_channels=128']


def seg_options(root: str, pool_only: bool = False, size=(48, 96)) -> list:
    """The street domains at 48x96, a ResNetV1c-18 DeepLabV3+."""
    h, w = size
    options = [
        'model.pretrained=None', 'model.backbone.depth=18',
        'model.decode_head.in_channels=512',
        'model.decode_head.c1_in_channels=64',
        'model.auxiliary_head.in_channels=256',
        f'model.data_preprocessor.size=({h // 2 * 2},{w // 2 * 2})',
        'train_dataloader.batch_size=2',
    ]
    resize, crop = f'({w},{h})', f'({h},{w})'
    if pool_only:
        options += [f'train_dataloader.dataset.data_root={root}/cityscapes/',
                    f'train_dataloader.dataset.pipeline.2.scale={resize}',
                    f'train_dataloader.dataset.pipeline.3.crop_size={crop}']
    else:
        datasets = 'train_dataloader.dataset.datasets'
        options += [f'{datasets}.0.data_root={root}/gta/',
                    f'{datasets}.1.data_root={root}/cityscapes/']
        for i in (0, 1):
            options += [f'{datasets}.{i}.pipeline.2.scale={resize}',
                        f'{datasets}.{i}.pipeline.3.crop_size={crop}']
    for loader in ('val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}/cityscapes/',
                    f'{loader}.dataset.pipeline.1.scale={resize}']
    return options


def class_folders(root: str) -> list:
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')]


def options_for(config: str, data: dict) -> list:
    name = osp.basename(config)
    if name == 'saal_faster_rcnn_voc.py':
        return voc_options(data['voc']) + R18_FPN + SMALL_BOX_HEAD + \
            rounds(4, 2)
    if name == 'saal_retinanet_voc.py':
        return voc_options(data['voc']) + R18_FPN + rounds(4, 2)
    if name == 'saal_ssd300_voc.py':  # SSD's anchors need its 300x300
        # VGG-16 at 300x300 trains 3 s an image here: one image a round.
        return voc_options(data['voc'], pipelines=(None, None)) + [
            'model.backbone.init_cfg=None'] + rounds(1, 1)
    if name in ('saal_deeplabv3plus_r101_gta2cityscapes.py',
                'saal_deeplabv3plus_r101_gta2cityscapes_pixel.py'):
        # A region is 32x32: a quarter of a 48x96 image holds one.
        return seg_options(data['street']) + rounds(0, 0.01 if 'pixel' in
                                                    name else 0.25)
    if name == 'saal_deeplabv3plus_r50_cityscapes.py':
        return seg_options(data['street'], pool_only=True) + rounds(2, 2)
    if name in ('saal_resnet18_cifar10.py', 'saal_resnet18_cifar100.py'):
        root = data['cifar10' if '10.py' in name else 'cifar100']
        options = [f'{loader}.dataset.data_root={root}'
                   for loader in ('train_dataloader', 'val_dataloader',
                                  'test_dataloader')]
        options += ['train_dataloader.batch_size=10'] + QUARTER_CIFAR_R18
        # CIFAR-10 starts with 2 images a class, CIFAR-100 with 1.
        return options + rounds(20 if '10.py' in name else 100, 5)
    if name == 'saal_resnet18_cifar_shapes32.py':
        return class_folders(data['crops32']) + QUARTER_CIFAR_R18 + \
            rounds(12, 5)
    if name == 'saal_tiny_resnet_shape_crops.py':
        return class_folders(data['crops']) + rounds(12, 5)
    if name in ('saal_faster_rcnn_r50_shapes_voc_resolution.py',
                'saal_retinanet_r50_shapes_voc_resolution.py'):
        root = data['shapes']
        options = [f'train_dataloader.dataset.data_root={root}',
                   'train_dataloader.dataset.pipeline.2.scale=(96,64)',
                   'train_dataloader.batch_size=2']
        for loader in ('val_dataloader', 'test_dataloader'):
            options += [f'{loader}.dataset.data_root={root}',
                        f'{loader}.dataset.ann_file='
                        'Shapes/ImageSets/Main/test.txt',
                        f'{loader}.dataset.data_prefix.sub_data_root=Shapes/',
                        f'{loader}.dataset.metainfo.classes='
                        '[circle,square,triangle]',
                        f'{loader}.dataset.pipeline.1.scale=(96,64)']
        return options + R18_FPN + (
            SMALL_BOX_HEAD if 'faster' in name else []) + rounds(4, 2)
    if name in ('saal_tiny_deeplabv3plus_street_dusk.py',
                'saal_deeplabv3plus_r50_street_domains_512.py'):
        root = data['street']
        datasets = 'train_dataloader.dataset.datasets'
        options = [f'{datasets}.0.data_root={root}/gta/',
                   f'{datasets}.1.data_root={root}/cityscapes/',
                   'model.data_preprocessor.size=(48,96)']
        for loader in ('val_dataloader', 'test_dataloader'):
            options += [f'{loader}.dataset.data_root={root}/cityscapes/']
        if '512' in name:
            options += ['model.backbone.depth=18',
                        'model.decode_head.in_channels=512',
                        'model.decode_head.c1_in_channels=64',
                        'model.auxiliary_head.in_channels=256',
                        'train_dataloader.batch_size=2']
        return options + rounds(0, 0.25 if '512' in name else 0.05)
    if name == 'saal_tiny_faster_rcnn_clutter.py':
        return _tiny_det(data['clutter']) + rounds(4, 2)
    if name in ('saal_tiny_faster_rcnn_shapes_long.py',
                'saal_tiny_fcos_shapes.py', 'saal_tiny_retinanet_shapes.py'):
        return _tiny_det(data['shapes']) + rounds(4, 2)
    raise KeyError(f'{config} has no test run: add its data and overrides '
                   f'to tests/e2e/test_shipped_configs.py')


def _tiny_det(root: str) -> list:
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')] + [
                'train_dataloader.batch_size=2']


@pytest.mark.parametrize('config', SHIPPED, ids=osp.basename)
def test_a_shipped_config_runs_two_rounds(config, data, tmp_path):
    user = tmp_path / 'my_config.py'
    text = f'_base_ = [{osp.join(REPO, config)!r}]\n'
    if 'cifar' in config and 'shapes' not in config:
        # Read at parse time, so in the file (cfg-options come after).
        text += ("custom_imports = dict(imports=['mmsaal', 'cifar_offline'],"
                 " allow_failed_imports=False)\n")
    user.write_text(text)
    work_dir = str(tmp_path / 'run')
    done = run_train_al(work_dir,
                        options_for(config, data) + LOADERS + [POOL_SUBSET],
                        config=str(user), timeout=900)
    log = done.stdout + done.stderr
    assert 'Traceback' not in log
    for round_idx in (0, 1, 2):
        folder = osp.join(work_dir, 'rounds', f'round_{round_idx:02d}')
        assert osp.isfile(osp.join(folder, 'state.json')), log[-3000:]
    # Round 2 labeled more than round 1 had (images, or pixels).
    report = json.load(open(osp.join(work_dir, 'report.json')))
    amount = [(row['labeled'], row.get('pixel_fraction') or 0.0)
              for row in report]
    assert amount[2] > amount[1], report
    # Quiet starts: no registry-scope or worker-count warning.
    assert 'Failed to search registry' not in log
    assert 'worker processes in total' not in log
