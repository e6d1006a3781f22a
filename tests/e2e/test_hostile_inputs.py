"""Bad and hostile files in a work dir, a pool or a label file: each gets
one ``error:`` line that names the file and the fix, no traceback, and the
tree is left exactly as it was. Where a fallback exists it is taken and
said. Through the real tools/train_al.py and tools/import_labels.py."""
import hashlib
import json
import os
import os.path as osp
import pickle
import shutil
import zipfile

import pytest
from conftest import quick_options, run_train_al
from test_trust import copy_of, finished, one_line, resume  # noqa: F401


def tree_digest(root: str) -> dict:
    """Every path below ``root`` with what it is: a file's bytes, a link's
    target, a folder."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = osp.join(folder, name)
            rel = osp.relpath(path, root)
            if osp.islink(path):
                out[rel] = 'link ' + os.readlink(path)
            elif osp.isdir(path):
                out[rel] = 'dir'
            else:
                with open(path, 'rb') as f:
                    out[rel] = hashlib.sha1(f.read()).hexdigest()
    return out


def malicious_checkpoint(path: str, marker: str) -> None:
    """A torch zip checkpoint whose pickle would touch ``marker``."""
    class Touch:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('archive/data.pkl', pickle.dumps({'x': Touch()},
                                                          protocol=2))
        archive.writestr('archive/version', '3\n')


def damage(kind: str, work_dir: str, tmp_path) -> list:
    """Damage the copy of a finished run as ``kind`` says; returns the
    arguments of the resume that meets it."""
    rounds = osp.join(work_dir, 'rounds')
    marker = str(tmp_path / 'executed')
    if kind == 'empty run.json':
        open(osp.join(rounds, 'run.json'), 'w').write('{}')
    elif kind == 'truncated random states':
        path = osp.join(rounds, 'round_02', 'random_states.pth')
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    elif kind == 'malicious --resume':
        malicious_checkpoint(str(tmp_path / 'evil.pth'), marker)
        return [str(tmp_path / 'evil.pth')]
    elif kind == 'junk --resume':
        (tmp_path / 'junk.pth').write_bytes(os.urandom(4096))
        return [str(tmp_path / 'junk.pth')]
    elif kind == 'every checkpoint damaged':
        for name in os.listdir(work_dir):
            if name.endswith('.pth'):
                open(osp.join(work_dir, name), 'wb').write(os.urandom(512))
        open(osp.join(work_dir, 'last_checkpoint'), 'w').write(
            str(tmp_path / 'elsewhere' / 'epoch_3.pth'))
    elif kind == 'lock is /dev/zero':
        os.symlink('/dev/zero', osp.join(work_dir, '.mmsaal.lock'))
    elif kind == 'state_dir changed':
        return ['--cfg-options', 'active_learning.state_dir=rounds2']
    elif kind == 'last_checkpoint a link':
        target = tmp_path / 'user_file.txt'
        target.write_text('a file of the user')
        pointer = osp.join(work_dir, 'last_checkpoint')
        named = open(pointer).read()
        os.remove(pointer)
        target.write_text(named)
        os.symlink(str(target), pointer)
    elif kind == 'config dump a link':
        target = tmp_path / 'user_config.py'
        dump = osp.join(work_dir, 'saal_tiny_faster_rcnn_shapes.py')
        shutil.move(dump, target)
        os.symlink(str(target), dump)
    else:
        raise ValueError(kind)
    return []


@pytest.mark.parametrize('kind, message', [
    ('empty run.json', 'run.json is damaged: it holds no run id'),
    ('truncated random states', 'random_states.pth cannot be read'),
    ('malicious --resume', 'holds objects a checkpoint may not'),
    ('junk --resume', 'damaged (cut short?) or not a checkpoint'),
    ('every checkpoint damaged', 'holds no checkpoint to resume from'),
    ('lock is /dev/zero', 'it must be a regular file (not a link)'),
    ('state_dir changed', "keeps its rounds in 'rounds'"),
    ('last_checkpoint a link', 'last_checkpoint is a link'),
    ('config dump a link', 'saal_tiny_faster_rcnn_shapes.py is a link'),
])
def test_a_damaged_work_dir_gets_one_line_and_stays_as_it_was(
        finished, tmp_path, kind, message):  # noqa: F811
    work_dir = copy_of(finished, tmp_path)
    extra = damage(kind, work_dir, tmp_path)
    options = finished[1]
    if extra[:1] == ['--cfg-options']:
        options, extra = options + extra[1:], []
    before = tree_digest(str(tmp_path))
    line = one_line(resume(work_dir, options, extra))
    assert message in line, line
    assert tree_digest(str(tmp_path)) == before
    assert not (tmp_path / 'executed').exists()


@pytest.mark.parametrize('kind', ['junk', 'malicious'])
def test_a_bad_newest_checkpoint_falls_back_to_the_one_before(
        finished, tmp_path, kind):  # noqa: F811
    """A planted or junk ``epoch_9.pth`` is no checkpoint: the resume says
    so and goes on from the newest one that loads."""
    work_dir = copy_of(finished, tmp_path)
    planted = osp.join(work_dir, 'epoch_9.pth')
    if kind == 'junk':
        open(planted, 'wb').write(os.urandom(4096))
    else:
        malicious_checkpoint(planted, str(tmp_path / 'executed'))
    os.remove(osp.join(work_dir, 'last_checkpoint'))
    done = resume(work_dir, finished[1], check=True)
    log = done.stdout + done.stderr
    assert f'{planted} is damaged' in log and 'skipped' in log
    assert not (tmp_path / 'executed').exists()


def test_a_work_dir_that_is_a_file_or_an_unreadable_initial_file(
        voc_shapes, tmp_path):
    path = tmp_path / 'run'
    path.write_text('a file of the user')
    options = quick_options(voc_shapes, rounds=1)
    line = one_line(run_train_al(str(path), options, check=False))
    assert 'is a file, not a folder' in line
    assert path.read_text() == 'a file of the user'
    work_dir = str(tmp_path / 'new')
    line = one_line(run_train_al(
        work_dir, options + [
            f'active_learning.initial_labeled_file={tmp_path}/missing.json'],
        check=False))
    assert 'active_learning.initial_labeled_file' in line
    assert 'cannot be read' in line
    assert not osp.exists(work_dir)


def test_links_in_the_rounds_folder_are_never_followed_to_delete_or_write(
        finished, tmp_path):  # noqa: F811
    """A link at a leftover name (``.incomplete_round_NN``) or at a fixed
    temporary name is removed or passed by, never written or deleted
    through."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'thesis.txt').write_text('years of work')
    work_dir = copy_of(finished, tmp_path)
    os.symlink(str(outside), osp.join(work_dir, 'rounds',
                                      '.incomplete_round_03'))
    options = finished[1] + ['active_learning.num_rounds=3']
    resume(work_dir, options, check=True)
    assert (outside / 'thesis.txt').read_text() == 'years of work'
    assert not osp.lexists(osp.join(work_dir, 'rounds',
                                    '.incomplete_round_03'))
    assert json.load(open(osp.join(work_dir, 'rounds', 'round_03',
                                   'state.json')))


def test_a_planted_temporary_link_is_not_followed_and_a_deleted_pool_image_is_named(
        voc_shapes, tmp_path):
    """reset_each_round writes the initial state through a fresh
    temporary name, never through a link planted at a fixed one; a pool
    image deleted between a stop and the resume is named before any
    training."""
    data = tmp_path / 'data'
    shutil.copytree(voc_shapes, data)
    work_dir = tmp_path / 'run'
    (work_dir / 'rounds').mkdir(parents=True)
    outside = tmp_path / 'outside.pth'
    outside.write_text('a file of the user')
    os.symlink(str(outside), work_dir / 'rounds' / 'initial_state.pth.tmp')
    options = quick_options(str(data) + '/', rounds=1) + [
        'active_learning.reset_each_round=True']
    run_train_al(str(work_dir), options)
    assert outside.read_text() == 'a file of the user'
    assert osp.isfile(work_dir / 'rounds' / 'initial_state.pth')
    images = sorted((data / 'Shapes' / 'JPEGImages').glob('*.jpg'))
    os.remove(images[3])
    before = tree_digest(str(work_dir))
    line = one_line(resume(str(work_dir), options +
                           ['active_learning.num_rounds=2']))
    assert f'the pool image {images[3]} does not exist' in line, line
    assert tree_digest(str(work_dir)) == before


def test_a_pool_image_that_is_no_image_or_too_large_is_named_at_the_start(
        voc_shapes, tmp_path):
    from PIL import Image
    from conftest import human_options, image_folder_pool
    pool, config, _ = image_folder_pool.__wrapped__(voc_shapes, tmp_path)
    bad = osp.join(pool, 'images', 'zz_text.jpg')
    open(bad, 'w').write('this is text, not a JPEG')
    work_dir = str(tmp_path / 'run')
    line = one_line(run_train_al(work_dir, human_options(voc_shapes),
                                 config=config, check=False))
    assert f'the pool image {bad} cannot be read as an image' in line, line
    assert 'skip_unreadable=True' in line
    assert not osp.exists(work_dir)
    skipping = run_train_al(work_dir, human_options(voc_shapes) + [
        'train_dataloader.dataset.skip_unreadable=True'], config=config)
    assert 'left 1 unreadable images out of the pool' in \
        skipping.stdout + skipping.stderr
    assert f'{bad}' in skipping.stdout + skipping.stderr
    state = json.load(open(osp.join(work_dir, 'rounds', 'round_00',
                                    'state.json')))
    assert state['pool_size'] == 40  # the 40 images, not the text file
    shutil.rmtree(work_dir)
    os.remove(bad)
    Image.new('1', (14000, 14000)).save(osp.join(pool, 'images',
                                                 'zz_huge.png'))
    line = one_line(run_train_al(work_dir, human_options(voc_shapes),
                                 config=config, check=False))
    assert 'zz_huge.png has more pixels than mmsaal decodes' in line, line
    assert not osp.exists(work_dir)


def test_a_segmentation_work_dir_with_a_linked_mask_folder_or_bad_reveals(
        street_domains, tmp_path):
    """The mask export deletes only masks it writes, even when the mask
    folder is a link to a folder of the user's; revealed.npz naming an
    image outside the pool is refused in one line."""
    import numpy as np
    from conftest import SEG_DEMO_CONFIG, seg_quick_options
    options = seg_quick_options(street_domains, rounds=1)
    work_dir = tmp_path / 'run'
    run_train_al(str(work_dir), options, config=SEG_DEMO_CONFIG)
    masks = work_dir / 'rounds' / 'revealed'
    user = tmp_path / 'user_folder'
    shutil.copytree(masks, user)
    (user / 'thesis.txt').write_text('years of work')
    (user / 'notes.md').write_text('notes')
    os.remove(user / '.exported.json')  # the export writes every mask again
    shutil.rmtree(masks)
    os.symlink(str(user), masks)
    def seg_resume(check):
        return run_train_al(str(work_dir), options, config=SEG_DEMO_CONFIG,
                            extra=['--resume'], check=check)

    seg_resume(True)
    assert (user / 'thesis.txt').read_text() == 'years of work'
    assert (user / 'notes.md').read_text() == 'notes'
    assert osp.exists(user / '.exported.json')
    path = work_dir / 'rounds' / 'round_01' / 'revealed.npz'
    with np.load(path) as saved:
        arrays = {k: saved[k] for k in saved.files}
    arrays['index'] = arrays['index'] + 1000
    np.savez(path, **arrays)
    before = tree_digest(str(tmp_path))
    line = one_line(seg_resume(False))
    assert 'outside the pool of 16 images' in line, line
    assert tree_digest(str(tmp_path)) == before


def test_a_malicious_load_from_is_refused_before_anything_is_written(
        voc_shapes, tmp_path):
    evil = tmp_path / 'weights.pth'
    malicious_checkpoint(str(evil), str(tmp_path / 'executed'))
    work_dir = str(tmp_path / 'run')
    line = one_line(run_train_al(
        work_dir, quick_options(voc_shapes, rounds=1) + [f'load_from={evil}'],
        check=False))
    assert f'load_from {evil} holds objects a checkpoint may not' in line
    assert not osp.exists(work_dir)
    assert not (tmp_path / 'executed').exists()
