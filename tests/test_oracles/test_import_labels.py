"""tools/import_labels.py takes a person's COCO labels only when every box
and image checks out: each problem named with its image and field, nothing
written otherwise, a backup per import, --skip-invalid and --replace, and
the work dir's config never executed."""
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import shutil

import pytest
from conftest import REPO, human_options, image_folder_pool
from conftest import import_labels as run_import
from conftest import load_tool
from conftest import run_train_al, voc_to_coco
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsaal.utils import WorkDirError


@pytest.fixture(scope='module')
def waiting(voc_shapes, tmp_path_factory):
    """A human-oracle run that waits for the labels of its round 1."""
    tmp_path = tmp_path_factory.mktemp('waiting')
    # image_folder_pool is function-scoped: build the same pool here.
    pool, config, names = image_folder_pool.__wrapped__(voc_shapes,
                                                        tmp_path)
    work_dir = str(tmp_path / 'run')
    run_train_al(work_dir, human_options(voc_shapes), config=config)
    query = json.load(open(osp.join(work_dir, 'rounds', 'query_01',
                                    'query.json')))
    queried = [image['file_name'] for image in query['images']]
    answer = voc_to_coco(voc_shapes, queried)
    return dict(pool=pool, work_dir=work_dir, queried=queried,
                answer=answer, labels=osp.join(pool, 'labels.json'))


@pytest.fixture
def fresh(waiting, tmp_path):
    """The waiting run, with its pool file as it was after the test."""
    original = open(waiting['labels'], 'rb').read()
    yield dict(waiting, tmp=tmp_path)
    with open(waiting['labels'], 'wb') as f:
        f.write(original)
    for name in os.listdir(waiting['pool']):
        if name.endswith('.bak'):
            os.remove(osp.join(waiting['pool'], name))


def digest(path: str) -> str:
    return hashlib.sha1(open(path, 'rb').read()).hexdigest()


def write(tmp_path, data, name='labels.json') -> str:
    path = str(tmp_path / name)
    with open(path, 'w') as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    return path


def spoil(answer: dict, how: str) -> dict:
    """The correct answer with one thing a user got wrong."""
    bad = copy.deepcopy(answer)
    box = bad['annotations'][0]
    if how == 'string boxes':
        box['bbox'] = [str(v) for v in box['bbox']]
    elif how == 'outside':
        box['bbox'][0] = 10_000
    elif how == 'negative size':
        box['bbox'][2] = -4
    elif how == 'unknown category':
        box['category_id'] = 77
    elif how == 'no categories':
        del bad['categories']
    elif how == 'images as strings':
        bad['images'][0] = bad['images'][0]['file_name']
    elif how == 'no file_name':
        del bad['images'][0]['file_name']
    elif how == 'image twice':
        twin = dict(bad['images'][0], id=999,
                    file_name='other/' + bad['images'][0]['file_name'])
        bad['images'].append(twin)
    elif how == 'duplicate ids':
        bad['images'][1]['id'] = bad['images'][0]['id']
    return bad


@pytest.mark.parametrize('how, message', [
    ('string boxes', 'is not 4 finite numbers'),
    ('outside', 'leaves the image'),
    ('negative size', 'has no area'),
    ('unknown category', "category_id 77 is not in the file's categories"),
    ('no categories', "is not in the file's categories"),
    ('images as strings', 'images[0]: needs an int "id" and a "file_name"'),
    ('no file_name', 'images[0]: needs an int "id" and a "file_name"'),
    ('image twice', 'both name the queried image'),
    ('duplicate ids', 'is listed twice'),
])
def test_a_bad_label_file_is_refused_naming_the_image_and_field(
        fresh, how, message):
    before = digest(fresh['labels'])
    result = run_import(fresh['work_dir'],
                        write(fresh['tmp'], spoil(fresh['answer'], how)),
                        check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert 'nothing was written' in result.stderr
    assert digest(fresh['labels']) == before
    assert not [n for n in os.listdir(fresh['pool']) if n.endswith('.bak')]


@pytest.mark.parametrize('constant', ['NaN', 'Infinity', '-Infinity'])
def test_nan_and_infinity_are_refused(fresh, constant):
    text = json.dumps(fresh['answer'])
    first = json.dumps(fresh['answer']['annotations'][0]['bbox'][0])
    text = text.replace(f'"bbox": [{first},', f'"bbox": [{constant},', 1)
    before = digest(fresh['labels'])
    result = run_import(fresh['work_dir'], write(fresh['tmp'], text),
                        check=False)
    assert result.returncode != 0
    assert f'{constant.lstrip("-")} is not a number JSON knows' in \
        result.stderr or 'is not a number JSON knows' in result.stderr
    assert digest(fresh['labels']) == before


def test_limits_on_boxes_and_file_size(fresh):
    path = write(fresh['tmp'], fresh['answer'])
    many = run_import_args(fresh, path, '--max-boxes', '0')
    assert many.returncode != 0 and 'over --max-boxes 0' in many.stderr
    big = run_import_args(fresh, path, '--max-mb', '0.0001')
    assert big.returncode != 0 and 'over --max-mb' in big.stderr


def run_import_args(fresh, labels, *extra):
    return run_import(fresh['work_dir'], labels, *extra, check=False)


def test_skip_invalid_imports_the_rest_and_replace_imports_again(fresh):
    """--skip-invalid: the good images go in, the bad one is listed and
    stays unlabeled; each import backs the pool file up; importing an image
    again needs --replace."""
    before = open(fresh['labels']).read()
    bad = spoil(fresh['answer'], 'outside')
    wrong_image = next(i['file_name'] for i in bad['images']
                       if i['id'] == bad['annotations'][0]['image_id'])
    result = run_import_args(fresh, write(fresh['tmp'], bad),
                             '--skip-invalid')
    assert result.returncode == 0, result.stderr
    assert 'imported 4 images' in result.stdout
    assert f'skipped 1 images, which stay unlabeled:\n  {wrong_image}: ' \
        in result.stdout
    backups = sorted(n for n in os.listdir(fresh['pool'])
                     if n.endswith('.bak'))
    assert backups == ['labels.json.round_01.bak']
    assert open(osp.join(fresh['pool'], backups[0])).read() == before
    pool = json.load(open(fresh['labels']))
    assert wrong_image not in {i['file_name'] for i in pool['images']}
    # The same labels again change nothing; changed ones need --replace.
    answer = write(fresh['tmp'], fresh['answer'], 'answer.json')
    same = run_import_args(fresh, answer)
    assert same.returncode == 0, same.stderr
    assert 'imported 5 images (' in same.stdout  # the skipped one joins
    nothing = run_import_args(fresh, answer)
    assert 'held these labels already: nothing changed' in nothing.stdout
    moved = copy.deepcopy(fresh['answer'])
    moved['annotations'][-1]['bbox'][0] += 1
    moved_path = write(fresh['tmp'], moved, 'moved.json')
    again = run_import_args(fresh, moved_path)
    assert again.returncode != 0 and 'pass --replace' in again.stderr
    replaced = run_import_args(fresh, moved_path, '--replace')
    assert replaced.returncode == 0, replaced.stderr
    assert 'replacing the labels of 1' in replaced.stdout
    pool = json.load(open(fresh['labels']))
    names = [i['file_name'] for i in pool['images']]
    assert len(names) == len(set(names)) == 15
    assert sorted(n for n in os.listdir(fresh['pool'])
                  if n.endswith('.bak')) == [
        'labels.json.round_01.2.bak', 'labels.json.round_01.3.bak',
        'labels.json.round_01.bak']


def test_the_work_dirs_config_is_never_executed(fresh):
    """import_labels reads the run from experiment.json: a .py planted in
    the work dir does not run."""
    marker = fresh['tmp'] / 'executed'
    planted = osp.join(fresh['work_dir'], 'zz_planted.py')
    with open(planted, 'w') as f:
        f.write(f'import pathlib; pathlib.Path({str(marker)!r}).touch()\n')
    try:
        result = run_import(fresh['work_dir'],
                            write(fresh['tmp'], fresh['answer']))
        assert 'imported 5 images' in result.stdout
    finally:
        os.remove(planted)
    assert not marker.exists()


def test_a_planted_link_is_replaced_not_written_through(fresh):
    outside = fresh['tmp'] / 'outside.json'
    outside.write_text(open(fresh['labels']).read())
    os.remove(fresh['labels'])
    os.symlink(outside, fresh['labels'])
    result = run_import(fresh['work_dir'],
                        write(fresh['tmp'], fresh['answer']))
    assert 'imported 5 images' in result.stdout
    assert not osp.islink(fresh['labels'])
    assert len(json.loads(outside.read_text())['images']) == 10


# ------------------------------------------------------------------- fuzz
NUMBERS = st.one_of(st.integers(-5, 200), st.floats(allow_nan=True,
                                                    allow_infinity=True),
                    st.text(max_size=3), st.none(), st.booleans())


@st.composite
def mutated(draw, answer):
    """The answer with a few random fields replaced by random values."""
    bad = copy.deepcopy(answer)
    for _ in range(draw(st.integers(1, 4))):
        part = draw(st.sampled_from(['images', 'annotations', 'categories']))
        if not bad.get(part):
            continue
        row = draw(st.integers(0, len(bad[part]) - 1))
        if draw(st.booleans()) and isinstance(bad[part][row], dict):
            key = draw(st.sampled_from(sorted(bad[part][row]) + ['bbox']))
            if key == 'bbox' and part == 'annotations':
                box = list(bad[part][row].get('bbox', [0, 0, 1, 1]))
                box[draw(st.integers(0, 3))] = draw(NUMBERS)
                bad[part][row]['bbox'] = box
            else:
                bad[part][row][key] = draw(NUMBERS)
        else:
            bad[part][row] = draw(st.one_of(NUMBERS, st.just(
                copy.deepcopy(bad[part][0]))))
    return bad


def test_generated_malformed_files_are_imported_right_or_refused_whole(
        fresh):
    """Any mutation of a correct answer either imports exactly the queried
    images with finite boxes inside them, or is refused with the pool file
    untouched."""
    tool = load_tool('import_labels.py')
    args = type('Args', (), dict(
        work_dir=fresh['work_dir'], config=None, partial=True,
        skip_invalid=False, replace=True, max_boxes=1000, max_mb=100))
    original = open(fresh['labels'], 'rb').read()
    sizes = {i['file_name']: (i['width'], i['height'])
             for i in fresh['answer']['images']}

    @settings(max_examples=60, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated(fresh['answer']))
    def check(labels):
        with open(fresh['labels'], 'wb') as f:
            f.write(original)
        args.labels = write(fresh['tmp'], labels, 'fuzz.json')
        try:
            tool.import_labels(args)
        except (SystemExit, WorkDirError) as refusal:
            assert open(fresh['labels'], 'rb').read() == original, refusal
            return
        pool = json.load(open(fresh['labels']))
        names = [i['file_name'] for i in pool['images']]
        assert len(names) == len(set(names))
        by_id = {i['id']: i for i in pool['images']}
        for ann in pool['annotations']:
            x, y, w, h = ann['bbox']
            width, height = sizes.get(by_id[ann['image_id']]['file_name'],
                                      (10**9, 10**9))
            assert all(isinstance(v, (int, float)) for v in (x, y, w, h))
            assert 0 <= x and 0 <= y and w > 0 and h > 0
            assert x + w <= width and y + h <= height

    try:
        check()
    finally:
        for name in os.listdir(fresh['pool']):
            if name.endswith('.bak'):
                os.remove(osp.join(fresh['pool'], name))


def test_a_device_a_missing_category_or_a_mistyped_work_dir(fresh, tmp_path):
    """One error line each, nothing written: a labels file that is a
    device (read without a size cap it would never end), a pool file
    without a category the labels use, a work dir that does not exist (not
    made)."""
    before = digest(fresh['labels'])
    zero = run_import(fresh['work_dir'], '/dev/zero', check=False)
    assert zero.returncode != 0 and 'Traceback' not in zero.stderr
    assert 'is not a regular file' in zero.stderr, zero.stderr
    pool = json.load(open(fresh['labels']))
    pool['categories'] = [c for c in pool['categories']
                          if c['name'] != 'triangle']
    with open(fresh['labels'], 'w') as f:
        json.dump(pool, f)
    spoiled = digest(fresh['labels'])
    answer = copy.deepcopy(fresh['answer'])
    assert any(a['category_id'] == 3 for a in answer['annotations'])
    missing = run_import(fresh['work_dir'], write(fresh['tmp'], answer),
                         check=False)
    assert 'Traceback' not in missing.stderr
    assert "lists no category 'triangle'" in missing.stderr, missing.stderr
    assert digest(fresh['labels']) == spoiled != before
    typo = str(tmp_path / 'no_such_run')
    result = run_import(typo, write(fresh['tmp'], answer), check=False)
    assert f'error: {typo} does not exist' in result.stderr, result.stderr
    assert not osp.exists(typo)


def test_labels_match_the_queried_image_by_its_path():
    """A label for a/000008.jpg never lands on the queried b/000008.jpg; a
    bare file name matches only when one queried image has it; a tool's
    own folder before the queried path is allowed."""
    from mmsaal.rounds.label_import import match_queried
    queried = {'b/000008.jpg': 'b8', 'b/000009.jpg': 'b9',
               'c/000009.jpg': 'c9'}
    assert match_queried('a/000008.jpg', queried) is None
    assert match_queried('b/000008.jpg', queried) == 'b8'
    assert match_queried('./b//000008.jpg', queried) == 'b8'
    assert match_queried('000008.jpg', queried) == 'b8'
    assert match_queried('000009.jpg', queried) == ['b/000009.jpg',
                                                    'c/000009.jpg']
    assert match_queried('export/images/b/000009.jpg', queried) == 'b9'
    assert match_queried('x/000009.jpg', queried) is None


def test_a_box_at_the_border_is_clipped_and_the_next_command_is_real(
        fresh):
    """Label Studio's percentages put a box drawn to the right edge a
    hair past it: within half a pixel it is clipped, and counted. The
    message names the config the run started with."""
    answer = copy.deepcopy(fresh['answer'])
    box = answer['annotations'][0]
    image = next(i for i in answer['images'] if i['id'] == box['image_id'])
    box['bbox'][2] = image['width'] - box['bbox'][0] + 0.3
    done = run_import(fresh['work_dir'], write(fresh['tmp'], answer))
    assert 'clipped 1 boxes' in done.stdout, done.stdout
    pool = json.load(open(fresh['labels']))
    x, _, w, _ = next(a['bbox'] for a in pool['annotations']
                      if abs(a['bbox'][0] - box['bbox'][0]) < 1e-9
                      and abs(a['bbox'][1] - box['bbox'][1]) < 1e-9)
    assert x + w == image['width']
    config = json.load(open(osp.join(fresh['work_dir'], 'rounds',
                                     'run.json')))['config']
    assert f'python tools/train_al.py {config} --work-dir' in done.stdout
    assert config.endswith('human_config.py')


def test_a_label_for_the_same_file_name_in_another_folder_is_refused(
        voc_shapes, tmp_path):
    """Two folders hold images of one file name: a label file naming the
    one that was not queried is refused, never taken for the queried one."""
    from conftest import CLASSES
    pool = tmp_path / 'pool'
    names = sorted(osp.basename(p) for p in glob.glob(
        osp.join(voc_shapes, 'Shapes', 'JPEGImages', '*.jpg')))[:12]
    for folder in ('a', 'b'):
        (pool / 'images' / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(osp.join(voc_shapes, 'Shapes', 'JPEGImages', name),
                        pool / 'images' / folder / name)
    labeled = voc_to_coco(voc_shapes, names[:6])
    for image in labeled['images']:
        image['file_name'] = 'a/' + image['file_name']
    (pool / 'labels.json').write_text(json.dumps(labeled))
    config = tmp_path / 'config.py'
    config.write_text(
        f'_base_ = [{osp.join(REPO, "configs", "demo", "saal_tiny_faster_rcnn_shapes.py")!r}]\n'
        'train_dataloader = dict(dataset=dict(_delete_=True,\n'
        f"    type='mmsaal.PoolCocoDataset', data_root={str(pool)!r},\n"
        "    ann_file='labels.json', data_prefix=dict(img='images/'),\n"
        f'    metainfo=dict(classes={CLASSES!r}),\n'
        "    pipeline={{_base_.train_pipeline}}))\n")
    work_dir = str(tmp_path / 'run')
    options = [o.replace('initial_labeled=10', 'initial_labeled=6')
               for o in human_options(voc_shapes)]
    run_train_al(work_dir, options, config=str(config))
    query = json.load(open(osp.join(work_dir, 'rounds', 'query_01',
                                    'query.json')))
    queried = {i['file_name'] for i in query['images']}
    other = {'a': 'b', 'b': 'a'}
    target = next(n for n in sorted(queried)
                  if f'{other[n[0]]}/{n[2:]}' not in queried)
    wrong = f'{other[target[0]]}/{target[2:]}'
    answer = voc_to_coco(voc_shapes, [target[2:]])
    answer['images'][0]['file_name'] = wrong
    before = digest(str(pool / 'labels.json'))
    result = run_import(work_dir, write(tmp_path, answer), check=False)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert f'{wrong} (image id 1): the round did not query this image' in \
        result.stderr, result.stderr
    assert digest(str(pool / 'labels.json')) == before
