"""oracle='human': a round stops after exporting its query, a person's
labels come in through tools/import_labels.py, --resume goes on. The pool is
a plain folder of images (mmsaal.PoolCocoDataset)."""
import glob
import json
import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET

import pytest
from conftest import (CLASSES, first_human_round, human_options,
                      import_labels, quick_options, run_train_al, voc_pool,
                      voc_to_coco)

def test_export_import_resume_labels_exactly_the_queried_images(
        voc_shapes, image_folder_pool, tmp_path):
    pool, config, names = image_folder_pool
    work_dir = str(tmp_path / 'run')
    options = human_options(voc_shapes)
    first = run_train_al(work_dir, options, config=config)
    assert 'waits for labels' in first.stdout + first.stderr
    assert 'tools/import_labels.py' in first.stdout + first.stderr
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_00',
                                      'labeled.json')))
    assert sorted(i['name'] for i in labeled['items']) == names[:10]
    assert not osp.exists(osp.join(work_dir, 'rounds', 'round_01'))
    query_dir = osp.join(work_dir, 'rounds', 'query_01')
    query = json.load(open(osp.join(query_dir, 'query.json')))
    queried = [image['file_name'] for image in query['images']]
    assert len(queried) == 5 and not set(queried) & set(names[:10])
    scores = [image['score'] for image in query['images']]
    assert scores == sorted(scores, reverse=True)
    lines = open(osp.join(query_dir, 'query.txt')).read().splitlines()
    assert [osp.basename(line.split('\t')[0]) for line in lines] == queried

    # Resuming before the labels arrive stops again, cleanly.
    again = run_train_al(work_dir, options, config=config,
                         extra=['--resume'])
    assert 'still waits for labels: 5 of the 5' in again.stdout + \
        again.stderr

    # Labels of an image the query did not list are refused.
    truth = voc_to_coco(voc_shapes, names)
    wrong = tmp_path / 'wrong.json'
    wrong.write_text(json.dumps(voc_to_coco(voc_shapes,
                                            queried + [names[0]])))
    refused = import_labels(work_dir, str(wrong), check=False)
    assert refused.returncode != 0
    assert 'did not query' in refused.stderr and names[0] in refused.stderr
    partial = tmp_path / 'partial.json'
    partial.write_text(json.dumps(voc_to_coco(voc_shapes, queried[:3])))
    assert 'have no labels' in import_labels(work_dir, str(partial),
                                             check=False).stderr

    answer = tmp_path / 'answer.json'
    answer.write_text(json.dumps(voc_to_coco(voc_shapes, queried)))
    # The tool as its own command, as a user types it.
    imported = import_labels(work_dir, str(answer), in_process=False)
    assert 'imported 5 images' in imported.stdout
    merged = json.load(open(osp.join(pool, 'labels.json')))
    assert len(merged['images']) == 15
    assert len(merged['annotations']) == sum(
        1 for a in truth['annotations']
        if truth['images'][a['image_id'] - 1]['file_name'] in
        names[:10] + queried)

    run_train_al(work_dir, options, config=config, extra=['--resume'])
    round_1 = osp.join(work_dir, 'rounds', 'round_01')
    labeled = json.load(open(osp.join(round_1, 'labeled.json')))
    assert sorted(i['name'] for i in labeled['items']) == sorted(
        names[:10] + queried)
    added = json.load(open(osp.join(round_1, 'queried.json')))
    assert sorted(i['name'] for i in added['items']) == sorted(queried)
    assert added['oracle'] == 'human'
    assert not osp.exists(query_dir)
    metrics = json.load(open(osp.join(round_1, 'metrics.json')))
    assert metrics['num_labeled'] == 15
    nothing = import_labels(work_dir, str(answer), check=False)
    assert 'no query waits for labels' in nothing.stderr


def test_a_coco_file_that_lists_unannotated_images(voc_shapes,
                                                 image_folder_pool, tmp_path):
    """The COCO layout of a partly labeled set: ``images`` lists all 40,
    ``annotations`` box 10. With empty_images='unlabeled' the other 30 are
    the pool to label; imported labels fill their entries (ids kept,
    marked labeled), an image labeled as empty stays labeled."""
    pool, config, names = image_folder_pool
    full = voc_to_coco(voc_shapes, names)
    boxed = {i['id'] for i in full['images'][:10]}
    full['annotations'] = [a for a in full['annotations']
                           if a['image_id'] in boxed]
    assert all(any(a['image_id'] == i for a in full['annotations'])
               for i in boxed)
    with open(osp.join(pool, 'labels.json'), 'w') as f:
        json.dump(full, f)
    work_dir = str(tmp_path / 'run')
    options = human_options(voc_shapes) + [
        'train_dataloader.dataset.empty_images=unlabeled']
    first = run_train_al(work_dir, options, config=config)
    assert 'starts with 10 of 40 items labeled' in first.stdout + \
        first.stderr
    query = json.load(open(osp.join(work_dir, 'rounds', 'query_01',
                                    'query.json')))
    queried = [image['file_name'] for image in query['images']]
    answer = voc_to_coco(voc_shapes, queried)
    empty = answer['images'][0]['id']
    answer['annotations'] = [a for a in answer['annotations']
                             if a['image_id'] != empty]
    path = tmp_path / 'answer.json'
    path.write_text(json.dumps(answer))
    done = import_labels(work_dir, str(path))
    assert 'imported 5 images' in done.stdout
    merged = json.load(open(osp.join(pool, 'labels.json')))
    ids = {i['file_name']: i['id'] for i in full['images']}
    assert [i['id'] for i in merged['images']] == [
        i['id'] for i in full['images']]
    marked = sorted(i['file_name'] for i in merged['images']
                    if i.get('labeled'))
    assert marked == sorted(queried)
    boxes = {a['image_id'] for a in merged['annotations']}
    assert ids[queried[0]] not in boxes
    assert {ids[n] for n in queried[1:]} <= boxes
    assert osp.exists(osp.join(pool, 'labels.json.round_01.bak'))
    run_train_al(work_dir, options, config=config, extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))
    assert sorted(i['name'] for i in labeled['items']) == sorted(
        names[:10] + queried)


def test_a_folder_pool_needs_the_human_oracle(voc_shapes, image_folder_pool,
                                              tmp_path):
    _, config, _ = image_folder_pool
    options = [o for o in human_options(voc_shapes)
               if 'oracle' not in o]
    result = run_train_al(str(tmp_path / 'run'), options, config=config,
                          check=False)
    assert result.returncode != 0
    assert "Use active_learning.oracle='human'" in result.stderr


def test_region_queries_wait_for_label_maps_of_the_regions(street_domains,
                                                           tmp_path):
    """Domain adaptation with a person: the target has no label maps at
    first; the queried regions are labeled in new maps, then resume."""
    import cv2
    import numpy as np
    from conftest import SEG_DEMO_CONFIG, seg_quick_options
    root = tmp_path / 'data'
    shutil.copytree(street_domains, root)
    truth = {}
    for path in glob.glob(str(root / 'cityscapes' / 'gtFine' / 'train' /
                              '*' / '*_labelTrainIds.png')):
        truth[path] = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        os.remove(path)
    work_dir = str(tmp_path / 'run')
    options = seg_quick_options(str(root), rounds=1) + [
        'active_learning.oracle=human']
    first = run_train_al(work_dir, options, config=SEG_DEMO_CONFIG)
    assert 'waits for labels' in first.stdout + first.stderr
    query_dir = osp.join(work_dir, 'rounds', 'query_01')
    regions = json.load(open(osp.join(query_dir, 'regions.json')))['items']
    assert len(regions) == 16
    # A person labels the regions only; the rest of each map stays 255.
    by_stem = {osp.basename(p).replace('_gtFine_labelTrainIds.png', ''): p
               for p in truth}
    for item in regions[:-1]:
        stem = osp.basename(item['name']).replace('_leftImg8bit.png', '')
        label = np.full_like(truth[by_stem[stem]], 255)
        for y, x, h, w in item['regions']:
            label[y:y + h, x:x + w] = truth[by_stem[stem]][y:y + h, x:x + w]
        cv2.imwrite(by_stem[stem], label)
    waiting = run_train_al(work_dir, options, config=SEG_DEMO_CONFIG,
                           extra=['--resume'])
    assert 'still waits for labels: 1 of the 16' in waiting.stdout + \
        waiting.stderr
    last = regions[-1]
    stem = osp.basename(last['name']).replace('_leftImg8bit.png', '')
    label = np.full_like(truth[by_stem[stem]], 255)
    for y, x, h, w in last['regions']:
        label[y:y + h, x:x + w] = truth[by_stem[stem]][y:y + h, x:x + w]
    cv2.imwrite(by_stem[stem], label)
    run_train_al(work_dir, options, config=SEG_DEMO_CONFIG,
                 extra=['--resume'])
    revealed = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                       'regions.json')))['items']
    assert revealed == regions
    assert not osp.exists(query_dir)
    metrics = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'metrics.json')))
    assert metrics['labeled_pixel_fraction'] > 0


def test_a_voc_pool_with_xmls_for_some_images_is_labeled_by_adding_xmls(
        voc_shapes, tmp_path):
    """The user's layout: an image list with XMLs for the labeled images
    only. The run starts from those, queries among the others, and goes on
    once the person has written the queried images' XMLs."""
    root, config, taken = voc_pool(voc_shapes, tmp_path, labeled=10)
    options = quick_options(root, rounds=1, initial=10, budget=5,
                            sampler='EntropySampler') + [
        'active_learning.oracle=human']
    work_dir = str(tmp_path / 'run')
    _, images = first_human_round(work_dir, options, config, '10 of 40')
    queried = [osp.splitext(i['file_name'])[0] for i in images]
    assert len(queried) == 5 and set(queried) <= set(taken)
    for image_id in queried:  # the person writes the XMLs, VOC as ever
        with open(osp.join(root, 'Shapes', 'Annotations',
                           f'{image_id}.xml'), 'w') as f:
            f.write(taken[image_id])
    run_train_al(work_dir, options, config=config, extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))
    assert len(labeled['items']) == 15


def voc_export(taken: dict, classes=CLASSES) -> dict:
    """A person's COCO export of the images ``taken`` (id -> XML text),
    in COCO's pixel edges: VOC's first pixel 1 is COCO's edge 0."""
    images, annotations = [], []
    for image_id, (name, text) in enumerate(sorted(taken.items()), 1):
        root = ET.fromstring(text)
        size = root.find('size')
        images.append(dict(id=image_id, file_name=f'{name}.jpg',
                           width=int(size.findtext('width')),
                           height=int(size.findtext('height'))))
        for obj in root.findall('object'):
            x1, y1, x2, y2 = (int(obj.find('bndbox').findtext(k))
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=classes.index(obj.findtext('name')) + 1,
                bbox=[x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=c)
                            for i, c in enumerate(classes)])


def test_imported_labels_land_in_the_voc_folder_as_xmls(voc_shapes,
                                                        tmp_path):
    """tools/import_labels.py writes a VOC pool's labels as VOC XMLs,
    object for object what the annotator drew; importing them again
    changes nothing; the resumed run trains on them."""
    from mmsaal.datasets.label_files.voc import voc_objects
    root, config, taken = voc_pool(voc_shapes, tmp_path, labeled=10)
    options = quick_options(root, rounds=1, initial=10, budget=5,
                            sampler='EntropySampler') + [
        'active_learning.oracle=human']
    work_dir = str(tmp_path / 'run')
    run_train_al(work_dir, options, config=config)
    query = json.load(open(osp.join(work_dir, 'rounds', 'query_01',
                                    'query.json')))
    queried = [osp.splitext(i['file_name'])[0] for i in query['images']]
    answer = tmp_path / 'answer.json'
    answer.write_text(json.dumps(voc_export(
        {name: taken[name] for name in queried})))
    done = import_labels(work_dir, str(answer))
    annotations = osp.join(root, 'Shapes', 'Annotations')
    assert 'imported 5 images' in done.stdout
    assert f'into {annotations}' in done.stdout, done.stdout
    for name in queried:
        written = osp.join(annotations, f'{name}.xml')
        original = tmp_path / f'{name}.xml'
        original.write_text(taken[name])
        assert voc_objects(written) == voc_objects(str(original))
    assert not glob.glob(osp.join(annotations, '*.bak'))
    again = import_labels(work_dir, str(answer))
    assert 'it held these labels already: nothing changed' in again.stdout
    run_train_al(work_dir, options, config=config, extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))
    assert len(labeled['items']) == 15


@pytest.mark.parametrize('case, message', [
    ('all labeled', 'all 40 pool images have labels already'),
    ('initial differs', 'initial_labeled asks for 30 labeled images, but '
     "with oracle='human' the initial set is the 10 pool images"),
])
def test_a_human_run_that_would_label_nothing_says_so(voc_shapes, tmp_path,
                                                      case, message):
    root, config, _ = voc_pool(voc_shapes, tmp_path,
                               labeled=40 if case == 'all labeled' else 10)
    options = quick_options(root, rounds=1, initial=30) + [
        'active_learning.oracle=human']
    work_dir = str(tmp_path / 'run')
    result = run_train_al(work_dir, options, config=config, check=False)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert message in result.stderr, result.stderr[-2000:]
    assert not osp.exists(work_dir)


def test_a_segmentation_pool_with_label_maps_for_some_images(street_domains,
                                                             tmp_path):
    """Label maps for 6 of the 16 target images: those are the initial
    set, whole images are queried among the other 10, and the run goes on
    once the person has saved the queried images' maps where the dataset
    reads them."""
    import cv2
    from conftest import SEG_DEMO_CONFIG, seg_quick_options
    root = tmp_path / 'data'
    shutil.copytree(street_domains, root)
    maps = sorted(glob.glob(str(root / 'cityscapes' / 'gtFine' / 'train' /
                                '*' / '*_labelTrainIds.png')))
    assert len(maps) == 16
    truth = {}
    for path in maps[6:]:
        truth[path] = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        os.remove(path)
    work_dir = str(tmp_path / 'run')
    options = seg_quick_options(str(root), rounds=1, budget=4,
                                granularity='image') + [
        'active_learning.oracle=human']
    _, images = first_human_round(work_dir, options, SEG_DEMO_CONFIG,
                                  '6 of 16')
    queried = [image['file_name'] for image in images]
    assert len(queried) == 4
    by_stem = {osp.basename(p).replace('_gtFine_labelTrainIds.png', ''): p
               for p in truth}
    for name in queried:  # the person draws each queried image's map
        stem = osp.basename(name).replace('_leftImg8bit.png', '')
        cv2.imwrite(by_stem[stem], truth[by_stem[stem]])
    run_train_al(work_dir, options, config=SEG_DEMO_CONFIG,
                 extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))['items']
    assert len(labeled) == 10
    assert sorted(osp.basename(i['name']) for i in labeled
                  if i['round'] == 1) == sorted(
                      osp.basename(n) for n in queried)
