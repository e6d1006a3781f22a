"""oracle=dict(type='LabelStudioOracle'): rounds labeled in a real Label
Studio server (installed in its own cached venv by
mmsaal/testing/label_studio.py, started per test on a free 127.0.0.1 port).
The test plays the annotator through Label Studio's REST API, as its
labeling page does; then --resume takes the annotations back."""
import glob
import hashlib
import json
import os
import os.path as osp
import urllib.request

import pytest
from conftest import (PYTHONPATH, REPO, SEG_DEMO_CONFIG, human_options,
                      run_python, run_train_al, seg_quick_options,
                      voc_to_coco)

from mmsaal.testing.label_studio import LabelStudioServer


@pytest.fixture
def server(tmp_path):
    with LabelStudioServer(str(tmp_path), str(tmp_path / 'ls-data')) as s:
        yield s


class Annotator:
    """A person at Label Studio's labeling page (its REST calls)."""

    def __init__(self, server) -> None:
        self.url, self.token = server.url, server.token

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'Authorization': f'Token {self.token}',
                     'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=60) as r:
            text = r.read()
        return json.loads(text) if text else None

    def project(self, title):
        found = self.call('GET', '/api/projects?page_size=100')['results']
        return next(p['id'] for p in found if p['title'] == title)

    def tasks(self, project, view=None, where=None):
        """The tasks as the data manager lists them (in ``view``'s order)
        with their predictions; only those whose ``data`` satisfies
        ``where`` (a task's page is a slow request)."""
        query = f'project={project}&page_size=1000&fields=all'
        if view is not None:
            query += f'&view={view}'
        tasks = self.call('GET', f'/api/tasks?{query}')['tasks']
        return [self.call('GET', f'/api/tasks/{t["id"]}') for t in tasks
                if where is None or where(t['data'])]

    def submit(self, task, result):
        return self.call('POST', f'/api/tasks/{task["id"]}/annotations',
                         dict(result=result, was_cancelled=False))


def ls_config(tmp_path, base, server, project, name='ls_config.py'):
    path = tmp_path / name
    path.write_text(
        f'_base_ = [{str(base)!r}]\n'
        f'active_learning = dict(oracle=dict(type="LabelStudioOracle", '
        f'url={server.url!r}, project={project!r}, score_thr=0.0))\n')
    return str(path)


def token_env(server, token=None):
    return dict(LABEL_STUDIO_API_KEY=token or server.token)


def output(result):
    return result.stdout + result.stderr


def rectangle(box, size, label):
    """A Label Studio rectangle of an ``xyxy`` box on ``(h, w)``."""
    (x1, y1, x2, y2), (h, w) = box, size
    return dict(from_name='label', to_name='image', type='rectanglelabels',
                original_width=w, original_height=h,
                value=dict(x=100 * x1 / w, y=100 * y1 / h,
                           width=100 * (x2 - x1) / w,
                           height=100 * (y2 - y1) / h, rotation=0,
                           rectanglelabels=[label]))


def truth_boxes(voc_shapes, name):
    coco = voc_to_coco(voc_shapes, [name])
    image = coco['images'][0]
    classes = {c['id']: c['name'] for c in coco['categories']}
    return (image['height'], image['width']), [
        ([a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
          a['bbox'][1] + a['bbox'][3]], classes[a['category_id']])
        for a in coco['annotations']]


def pool_boxes(pool, file_name):
    """What training reads for an image: its boxes in the pool file."""
    labels = json.load(open(osp.join(pool, 'labels.json')))
    ids = [i['id'] for i in labels['images'] if i['file_name'] == file_name]
    assert len(ids) == 1, file_name
    names = {c['id']: c['name'] for c in labels['categories']}
    return sorted((tuple(round(v, 3) for v in a['bbox']),
                   names[a['category_id']])
                  for a in labels['annotations'] if a['image_id'] == ids[0])


def as_xywh(results):
    """Label Studio rectangles as pixel ``xywh`` boxes."""
    out = []
    for r in results:
        w, h, v = r['original_width'], r['original_height'], r['value']
        out.append((tuple(round(x, 3) for x in (
            v['x'] * w / 100, v['y'] * h / 100, v['width'] * w / 100,
            v['height'] * h / 100)), v['rectanglelabels'][0]))
    return sorted(out)


def import_from_label_studio(work_dir, env):
    result = run_python(osp.join(REPO, 'tools', 'import_labels.py'),
                        [work_dir, '--label-studio'],
                        env=dict(os.environ, PYTHONPATH=PYTHONPATH, **env))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def tree_digest(*folders):
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(glob.glob(osp.join(folder, '**'),
                                     recursive=True)):
            if osp.isfile(path):
                digest.update(path.encode())
                digest.update(open(path, 'rb').read())
    return digest.hexdigest()


def test_detection_two_rounds_through_label_studio(
        voc_shapes, image_folder_pool, server, tmp_path):
    pool, base, names = image_folder_pool
    config = ls_config(tmp_path, base, server, 'shapes')
    work_dir = str(tmp_path / 'run')
    options = [o for o in human_options(voc_shapes) if 'oracle' not in o] + [
        'active_learning.num_rounds=2']
    env = token_env(server)
    first = run_train_al(work_dir, options, config=config, env=env)
    assert 'waits for labels in Label Studio' in output(first)
    assert server.token not in output(first)
    annotator = Annotator(server)
    project = annotator.project('shapes')
    views = annotator.call('GET', f'/api/dm/views?project={project}')
    ordered = [v for v in views
               if v['data'].get('ordering') == ['-tasks:predictions_score']]
    assert len(ordered) == 1
    tasks = annotator.tasks(project, view=ordered[0]['id'])
    query = json.load(open(osp.join(work_dir, 'rounds', 'query_01',
                                    'query.json')))
    # One task per queried image, most informative first, with the pool
    # position and path, the model's boxes scored with the acquisition
    # score of the round.
    assert [t['data']['mmsaal_index'] for t in tasks] == [
        i['id'] for i in query['images']]
    assert [t['data']['mmsaal_path'] for t in tasks] == [
        i['file_name'] for i in query['images']]
    for task, image in zip(tasks, query['images']):
        (prediction, ) = task['predictions']
        assert prediction['model_version'] == 'round 1'
        assert prediction['score'] == pytest.approx(image['score'])
        assert task['data']['mmsaal_score'] == pytest.approx(image['score'])
    file_name = {t['id']: t['data']['mmsaal_path'].split('/')[-1]
                 for t in tasks}
    if os.environ.get('MMSAAL_LABEL_STUDIO_SCREENSHOT'):  # for the docs
        from mmsaal.testing.label_studio import screenshot
        screenshot(server, f'/projects/{project}/data?tab={ordered[0]["id"]}'
                   f'&task={tasks[0]["id"]}',
                   os.environ['MMSAAL_LABEL_STUDIO_SCREENSHOT'])
    record = open(osp.join(work_dir, 'rounds', 'query_01',
                           'label_studio.json')).read()
    assert server.token not in record

    # The annotator accepts the first task's pre-annotation with one box
    # moved, draws a new box on the second, leaves the third for later and
    # labels the last two; and, by mistake, annotates an image the round
    # did not query (a task imported by hand).
    submitted = {}
    accepted = [dict(r) for r in tasks[0]['predictions'][0]['result']][:3]
    assert accepted, 'the model pre-annotated no box'
    accepted[0] = dict(accepted[0], value=dict(
        accepted[0]['value'], x=accepted[0]['value']['x'] / 2 + 1))
    annotator.submit(tasks[0], accepted)
    submitted[file_name[tasks[0]['id']]] = accepted
    for task in tasks[1:2] + tasks[3:]:
        size, boxes = truth_boxes(voc_shapes, file_name[task['id']])
        drawn = [rectangle(box, size, label) for box, label in boxes]
        annotator.submit(task, drawn)
        submitted[file_name[task['id']]] = drawn
    stray = annotator.call('POST', f'/api/projects/{project}/import', [dict(
        data=dict(tasks[0]['data'], mmsaal_index=0,
                  mmsaal_path=names[0]))])
    assert stray['task_count'] == 1
    (stray_task, ) = annotator.tasks(
        project, where=lambda data: data['mmsaal_index'] == 0)
    annotator.submit(stray_task, [])

    partly = run_train_al(work_dir, options, config=config, env=env,
                          extra=['--resume'])
    assert 'still waits for 1 of its 5 images in Label Studio' in output(
        partly)
    assert 'not of this round\'s query' in output(partly)
    assert not osp.exists(osp.join(work_dir, 'rounds', 'round_01'))

    # Annotated twice: the latest annotation counts.
    late = tasks[2]
    size, boxes = truth_boxes(voc_shapes, file_name[late['id']])
    annotator.submit(late, [rectangle([1, 1, 20, 20], size, 'circle')])
    drawn = [rectangle(box, size, label) for box, label in boxes]
    annotator.submit(late, drawn)
    submitted[file_name[late['id']]] = drawn

    imported = import_from_label_studio(work_dir, env)
    assert 'imported 5 of the 5 queried images' in imported.stdout
    labels_file = osp.join(pool, 'labels.json')
    before = open(labels_file, 'rb').read()
    backups = sorted(glob.glob(labels_file + '*.bak'))
    again = import_from_label_studio(work_dir, env)  # nothing changes
    assert 'nothing changed' in again.stdout
    assert 'nothing changed' not in imported.stdout
    assert open(labels_file, 'rb').read() == before
    assert sorted(glob.glob(labels_file + '*.bak')) == backups

    second = run_train_al(work_dir, options, config=config, env=env,
                          extra=['--resume'])
    assert 'waits for labels in Label Studio' in output(second)
    round_1 = osp.join(work_dir, 'rounds', 'round_01')
    added = json.load(open(osp.join(round_1, 'queried.json')))
    assert sorted(i['name'] for i in added['items']) == sorted(
        submitted)
    # What training reads is exactly what was submitted.
    for name, results in submitted.items():
        assert pool_boxes(pool, name) == as_xywh(results), name
    assert pool_boxes(pool, names[0]) != []  # the stray one is left out

    # Round 2 goes to the same project; labeled, the run finishes.
    tasks = annotator.tasks(project,
                            where=lambda data: data['mmsaal_round'] == 2)
    assert len(tasks) == 5
    for task in tasks:
        name = task['data']['mmsaal_path'].split('/')[-1]
        size, boxes = truth_boxes(voc_shapes, name)
        annotator.submit(task, [rectangle(b, size, c) for b, c in boxes])
    run_train_al(work_dir, options, config=config, env=env,
                 extra=['--resume'])
    metrics = json.load(open(osp.join(work_dir, 'rounds', 'round_02',
                                      'metrics.json')))
    assert metrics['num_labeled'] == 20
    for line in open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]):
        assert server.token not in line
    from mmsaal.utils import experiment_record
    assert server.token not in open(experiment_record(work_dir)).read()


def test_faults_name_their_fix_and_touch_nothing(
        voc_shapes, image_folder_pool, server, tmp_path):
    pool, base, names = image_folder_pool
    # No image is labeled: round 0's random draw goes to Label Studio, so
    # the faults meet the server before any training.
    labels = json.load(open(osp.join(pool, 'labels.json')))
    (tmp_path / 'pool' / 'labels.json').write_text(json.dumps(
        dict(labels, images=[], annotations=[])))
    config = ls_config(tmp_path, base, server, 'faults')
    work_dir = str(tmp_path / 'run')
    options = [o for o in human_options(voc_shapes) if 'oracle' not in o]
    rounds = osp.join(work_dir, 'rounds')

    wrong = run_train_al(work_dir, options, config=config, check=False,
                         env=token_env(server, 'not-the-token'))
    assert wrong.returncode == 1
    assert 'refused the token in $LABEL_STUDIO_API_KEY' in wrong.stderr
    assert 'not-the-token' not in output(wrong)
    assert not osp.exists(work_dir)  # a refused start leaves nothing
    env = token_env(server)
    unserved = run_train_al(
        work_dir, options + [
            f'active_learning.oracle.document_root={pool}/images'],
        config=config, check=False, env=env)
    assert unserved.returncode == 1
    assert 'does not serve' in unserved.stderr, unserved.stderr[-3000:]
    assert 'LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT' in unserved.stderr
    assert not osp.exists(work_dir)
    pushed = run_train_al(work_dir, options, config=config, env=env)
    assert 'waits for labels in Label Studio' in output(pushed)
    # Asked to wait, the run polls with a progress line, then stops.
    waited = run_train_al(
        work_dir, options + ['active_learning.oracle.wait=2',
                             'active_learning.oracle.poll=1'],
        config=config, env=env, extra=['--resume'])
    assert output(waited).count('0 of 10 images of round 0 annotated') >= 2
    annotator = Annotator(server)
    project = annotator.project('faults')
    for task in annotator.tasks(project):
        name = task['data']['mmsaal_path'].split('/')[-1]
        size, boxes = truth_boxes(voc_shapes, name)
        annotator.submit(task, [rectangle(b, size, c) for b, c in boxes])
    untouched = tree_digest(rounds, pool)

    annotator.call('DELETE', f'/api/projects/{project}')
    gone = run_train_al(work_dir, options, config=config, check=False,
                        env=env, extra=['--resume'])
    assert gone.returncode == 1
    assert 'is gone from' in gone.stderr and 'label_studio.json' in \
        gone.stderr
    assert tree_digest(rounds, pool) == untouched
    os.remove(osp.join(rounds, 'query_00', 'label_studio.json'))
    again = run_train_al(work_dir, options, config=config, env=env,
                         extra=['--resume'])
    assert 'waits for labels in Label Studio' in output(again)
    assert len(annotator.tasks(annotator.project('faults'))) == 10
    untouched = tree_digest(rounds, pool)

    server.stop()
    down = run_train_al(work_dir, options, config=config, check=False,
                        env=env, extra=['--resume'])
    assert down.returncode == 1
    assert 'cannot reach Label Studio' in down.stderr
    assert 'label-studio start' in down.stderr
    assert tree_digest(rounds, pool) == untouched
    unset = run_train_al(work_dir, options, config=config, check=False,
                         env=dict(LABEL_STUDIO_API_KEY=''),
                         extra=['--resume'])
    assert unset.returncode == 1
    assert '$LABEL_STUDIO_API_KEY is not set' in unset.stderr


def test_pixel_queries_are_refused(street_domains, tmp_path):
    config = tmp_path / 'pixel.py'
    config.write_text(
        f'_base_ = [{SEG_DEMO_CONFIG!r}]\n'
        'active_learning = dict(oracle=dict(type="LabelStudioOracle"))\n')
    work_dir = tmp_path / 'run'
    result = run_train_al(
        str(work_dir), seg_quick_options(street_domains, granularity='pixel',
                                         budget=0.01),
        config=str(config), check=False, env=dict(LABEL_STUDIO_API_KEY='x'))
    assert result.returncode == 1
    assert "use granularity='region'" in result.stderr
    assert not work_dir.exists()


@pytest.mark.parametrize('layout', ['voc', 'coco listing every image'])
def test_a_label_studio_round_lands_in_the_users_own_format(
        layout, voc_shapes, image_folder_pool, server, tmp_path):
    """A VOC folder with XMLs for 10 of 40 images, or a COCO file listing
    all 40 and boxing 10: the round's annotations become VOC XMLs, or
    boxes in the listed images' entries."""
    from conftest import quick_options
    from conftest import voc_pool

    from mmsaal.datasets.label_files.voc import voc_objects
    if layout == 'voc':
        root, base, taken = voc_pool(voc_shapes, tmp_path, labeled=10)
        options = quick_options(root, rounds=1, initial=10, budget=5,
                                sampler='EntropySampler')
    else:
        pool, base, names = image_folder_pool
        full = voc_to_coco(voc_shapes, names)
        full['annotations'] = [a for a in full['annotations']
                               if a['image_id'] <= 10]
        with open(osp.join(pool, 'labels.json'), 'w') as f:
            json.dump(full, f)
        options = [o for o in human_options(voc_shapes)
                   if 'oracle' not in o] + [
            'train_dataloader.dataset.empty_images=unlabeled']
    config = ls_config(tmp_path, base, server, 'own')
    work_dir = str(tmp_path / 'run')
    env = token_env(server)
    first = run_train_al(work_dir, options, config=config, env=env)
    assert 'starts with 10 of 40 items labeled' in output(first)
    annotator = Annotator(server)
    tasks = annotator.tasks(annotator.project('own'))
    assert len(tasks) == 5
    drawn = {}
    for task in tasks:
        name = task['data']['mmsaal_path'].split('/')[-1]
        size, boxes = truth_boxes(voc_shapes, name)
        drawn[name] = [rectangle(b, size, c) for b, c in boxes]
        annotator.submit(task, drawn[name])
    run_train_al(work_dir, options, config=config, env=env,
                 extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))
    assert len(labeled['items']) == 15
    if layout == 'voc':
        for name, results in drawn.items():
            stem = osp.splitext(name)[0]
            written = voc_objects(osp.join(root, 'Shapes', 'Annotations',
                                           f'{stem}.xml'))
            # Drawn from the XML's numbers as pixel edges: the first
            # pixel is one on.
            size, boxes = truth_boxes(voc_shapes, name)
            assert written == sorted(
                (c, (round(x1) + 1, round(y1) + 1, round(x2), round(y2)))
                for (x1, y1, x2, y2), c in boxes)
    else:
        merged = json.load(open(osp.join(pool, 'labels.json')))
        assert len(merged['images']) == 40
        for name, results in drawn.items():
            assert pool_boxes(pool, name) == as_xywh(results), name


def test_a_class_folder_pool_through_label_studio(tmp_path, server):
    """Classification in Label Studio: one choice an image, the model's
    class pre-selected; the chosen class moves the image out of
    unlabeled/ into its class's folder."""
    from conftest import class_folder_pool, folder_options

    from mmsaal.datasets.synthetic import write_digits
    digits = tmp_path / 'all_digits'
    write_digits(str(digits))
    root, base, truth = class_folder_pool(str(digits) + '/', tmp_path)
    config = ls_config(tmp_path, base, server, 'digits')
    options = [o for o in folder_options(root) if 'oracle' not in o]
    work_dir = str(tmp_path / 'run')
    env = token_env(server)
    first = run_train_al(work_dir, options, config=config, env=env)
    assert 'waits for labels in Label Studio' in output(first)
    annotator = Annotator(server)
    project = annotator.project('digits')
    assert '<Choices name="label"' in annotator.call(
        'GET', f'/api/projects/{project}')['label_config']
    tasks = annotator.tasks(project)
    assert len(tasks) == 10
    for task in tasks:
        (prediction, ) = task['predictions']
        (choice, ) = prediction['result']
        assert choice['value']['choices'][0] in [str(c) for c in range(10)]
        name = task['data']['mmsaal_path']
        annotator.submit(task, [dict(choice, value=dict(
            choices=[truth[name]]))])
    run_train_al(work_dir, options, config=config, env=env,
                 extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))
    assert len(labeled['items']) == 30
    for task in tasks:
        name = task['data']['mmsaal_path']
        assert osp.exists(osp.join(root, 'train', truth[name], name))
    assert glob.glob(osp.join(root, 'train', 'moves.round_01.json'))
