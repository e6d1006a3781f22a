# Copyright (c) mmsaal contributors. All rights reserved.
"""Label a round in Label Studio: the query becomes tasks of a Label
Studio project, with the model's predictions as pre-annotations, most
informative first; the annotations come back into the dataset.

Only Label Studio's REST API is used (standard library HTTP, no SDK), so
nothing of Label Studio's dependencies meets the training environment.
The access token comes from an environment variable (``LABEL_STUDIO_API_KEY``
by default) and is never written anywhere.

- :meth:`LabelStudioOracle.request` (a query round) makes or reuses the
  project (``RectangleLabels`` for detection; ``PolygonLabels`` for
  segmentation, with the queried regions, or the whole queried image, as
  rectangles of their own; ``Choices`` for classification),
  checks that the server serves every image (local-files storage), imports
  one task per queried image (its data: the pool position, path, round and
  run; its prediction: the model's detections above ``score_thr``, or its
  pseudo-label inside the queried regions, scored with the acquisition
  score), orders the project's view by that score, and stops the run.
- :func:`pull` (``tools/train_al.py --resume``, ``tools/import_labels.py
  --label-studio``) takes the finished annotations back, matched by the
  task's own data, into the pool's own label files (see
  ``mmsaal.datasets.label_files``): boxes into VOC XMLs or a COCO file,
  polygons into label maps, a class choice by moving the image into its
  class folder. An image annotated twice gives its latest annotation; one the
  round did not query is reported and left out; pulling again changes
  nothing.
"""
import json
import os
import os.path as osp
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np
from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.logging import print_log

from mmsaal.datasets.label_files import label_files_of
from mmsaal.pool import IGNORE_INDEX, RoundStore, dump_json_atomic
from mmsaal.utils.errors import WorkDirError
from mmsaal.utils.files import atomic_write
from .label_import import Checked
from .oracles import AwaitingLabels, HumanOracle
from .units import Query

TOKEN_ENV = 'LABEL_STUDIO_API_KEY'
#: The query folder's record of where its tasks are (never the token).
RECORD = 'label_studio.json'
QUERIED = 'queried region'


class LabelStudioError(WorkDirError):
    """Label Studio cannot serve the round; the message names the fix."""


class LabelStudioClient:
    """The few REST calls of Label Studio's API a round needs.

    Args:
        url (str): The server, e.g. ``http://127.0.0.1:8080``.
        token_env (str): The environment variable holding the access token.
        timeout (float): Seconds a call may take.
    """

    def __init__(self, url: str, token_env: str = TOKEN_ENV,
                 timeout: float = 60) -> None:
        self.url = url.rstrip('/')
        self.token_env = token_env
        token = os.environ.get(token_env)
        if not token:
            raise LabelStudioError(
                f'${token_env} is not set: set it to the access token of '
                f'your Label Studio account (Account & Settings > Access '
                f'Token) before the run; the token is read from there only, '
                f'never from the config.')
        self._token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body=None, what: str = ''):
        """JSON of one API call, or a :class:`LabelStudioError`."""
        text = self._send(method, path, body, what)
        return json.loads(text) if text else None

    def _send(self, method: str, path: str, body=None,
              what: str = '') -> bytes:
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'Authorization': f'Token {self._token}',
                     'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                text = r.read()
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise LabelStudioError(
                    f'Label Studio at {self.url} refused the token in '
                    f'${self.token_env} ({err.code}): set it to the access '
                    f'token of an account of that server (Account & '
                    f'Settings > Access Token; with a fixed token, the server '
                    f'needs LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true).'
                ) from None
            raise LabelStudioError(
                f'Label Studio at {self.url}: {method} {path} failed with '
                f'{err.code} {err.reason}{what}') from None
        except (urllib.error.URLError, OSError) as err:
            raise LabelStudioError(
                f'cannot reach Label Studio at {self.url} '
                f'({getattr(err, "reason", err)}): start the server (label-'
                f'studio start --internal-host 127.0.0.1 -p PORT), or set '
                f'active_learning.oracle.url to where it runs.') from None
        return text

    def status(self, path: str) -> int:
        """The HTTP status of a GET (an image the server serves, ...)."""
        try:
            self._send('GET', path)
            return 200
        except LabelStudioError as err:
            for code in (404, 403, 400):
                if f' {code} ' in str(err):
                    return code
            raise

    def project_by_title(self, title: str) -> Optional[dict]:
        query = urllib.parse.urlencode(dict(title=title, page_size=1000))
        found = self.call('GET', f'/api/projects?{query}')
        for project in found.get('results', found) if isinstance(
                found, dict) else found:
            if project.get('title') == title:
                return project
        return None

    def project(self, project_id: int) -> Optional[dict]:
        try:
            return self.call('GET', f'/api/projects/{project_id}')
        except LabelStudioError as err:
            if ' 404 ' in str(err):
                return None
            raise

    def tasks(self, project_id: int) -> List[dict]:
        """Every task of a project with its annotations (the JSON export,
        which keeps each task's data)."""
        return self.call(
            'GET', f'/api/projects/{project_id}/export?exportType=JSON&'
            f'download_all_tasks=true')


def label_config(classes: Sequence[str], segmentation: bool,
                 kind: str = 'boxes') -> str:
    """The labeling interface: boxes, polygons and the queried regions, or
    (``kind='class'``) one class an image."""
    if kind == 'class':
        choices = ''.join(f'<Choice value={quoteattr(str(c))}/>'
                          for c in classes)
        return (f'<View><Image name="image" value="$image" zoom="true"/>'
                f'<Choices name="label" toName="image" choice="single" '
                f'showInline="true">{choices}</Choices></View>')
    labels = ''.join(f'<Label value={quoteattr(str(c))}/>' for c in classes)
    if not segmentation:
        return (f'<View><Image name="image" value="$image" zoom="true"/>'
                f'<RectangleLabels name="label" toName="image">{labels}'
                f'</RectangleLabels></View>')
    return (f'<View><Image name="image" value="$image" zoom="true"/>'
            f'<PolygonLabels name="label" toName="image" strokeWidth="2">'
            f'{labels}</PolygonLabels>'
            f'<RectangleLabels name="queried" toName="image">'
            f'<Label value={quoteattr(QUERIED)} background="#FFD700"/>'
            f'</RectangleLabels></View>')


def _percent(value: float, size: int) -> float:
    return 100.0 * float(value) / size


def box_results(bboxes: np.ndarray, labels: Sequence[int],
                classes: Sequence[str], size: Tuple[int, int],
                scores: Optional[Sequence[float]] = None) -> List[dict]:
    """Label Studio rectangles of ``xyxy`` boxes on an image of ``(height,
    width)``, each with its detection score when ``scores`` are given."""
    height, width = size
    results = []
    for j, ((x1, y1, x2, y2), label) in enumerate(
            zip(np.asarray(bboxes).reshape(-1, 4), labels)):
        result = dict(
            from_name='label', to_name='image', type='rectanglelabels',
            original_width=width, original_height=height,
            value=dict(x=_percent(x1, width), y=_percent(y1, height),
                       width=_percent(x2 - x1, width),
                       height=_percent(y2 - y1, height), rotation=0,
                       rectanglelabels=[str(classes[int(label)])]))
        if scores is not None:
            result['score'] = round(float(scores[j]), 4)
        results.append(result)
    return results


def pre_annotated(scores: np.ndarray, score_thr: float, min_boxes: int,
                  score_floor: float) -> np.ndarray:
    """Which detections become pre-annotations: those scoring at least
    ``score_thr``, and at least the ``min_boxes`` best that score at least
    ``score_floor`` (a young model's boxes rarely reach ``score_thr``)."""
    scores = np.asarray(scores, np.float64)
    keep = scores >= score_thr
    best = np.argsort(-scores, kind='stable')[:min_boxes]
    keep[best[scores[best] >= score_floor]] = True
    return keep


def region_results(corners: np.ndarray, side: Union[int, Tuple[int, int]],
                   size: Tuple[int, int],
                   labels: Optional[np.ndarray] = None,
                   classes: Sequence[str] = ()) -> List[dict]:
    """The queried regions (``side`` x ``side``, or ``(height, width)``)
    as rectangles of their own, and, given the model's label map, its
    classes inside them as polygons."""
    height, width = size
    side_h, side_w = (side, side) if isinstance(side, int) else side
    results = []
    for y, x in np.asarray(corners).reshape(-1, 2).tolist():
        results.append(dict(
            from_name='queried', to_name='image', type='rectanglelabels',
            original_width=width, original_height=height,
            value=dict(x=_percent(x, width), y=_percent(y, height),
                       width=_percent(side_w, width),
                       height=_percent(side_h, height), rotation=0,
                       rectanglelabels=[QUERIED])))
        if labels is None:
            continue
        window = labels[y:y + side_h, x:x + side_w]
        for label in np.unique(window):
            if label == IGNORE_INDEX or label >= len(classes):
                continue
            mask = (window == label).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                points = contour.reshape(-1, 2)
                if len(points) < 3:
                    continue
                results.append(dict(
                    from_name='label', to_name='image',
                    type='polygonlabels', original_width=width,
                    original_height=height,
                    value=dict(points=[[_percent(px + x, width),
                                        _percent(py + y, height)]
                                       for px, py in points.tolist()],
                               closed=True,
                               polygonlabels=[str(classes[int(label)])])))
    return results


class LabelStudioOracle(HumanOracle):
    """A person labels each round in Label Studio (see the module's
    docstring). Configured as
    ``active_learning.oracle=dict(type='LabelStudioOracle', url=...,
    project=...)``.

    Args:
        url (str): The Label Studio server. Defaults to
            ``'http://127.0.0.1:8080'``.
        project (str): The project's title: made at the first query, used
            by every round after. Defaults to ``'mmsaal'``.
        document_root (str, optional): The server's
            ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``: the folder under
            which it serves the pool images. Defaults to the pool images'
            common folder.
        token_env (str): The environment variable holding the access
            token. Defaults to ``'LABEL_STUDIO_API_KEY'``.
        score_thr (float): Detections scoring at least this are
            pre-annotations (each with its score). Defaults to 0.3.
        min_boxes (int): Besides those, an image's ``min_boxes`` best
            detections are pre-annotations when they score at least
            ``score_floor``: a young model's boxes rarely reach
            ``score_thr``. Defaults to 3.
        score_floor (float): See ``min_boxes``. Defaults to 0.05.
        wait (float): Seconds ``tools/train_al.py`` waits for a round's
            annotations (pulling every ``poll`` seconds) before it stops;
            0 stops at once, as the human oracle does. Defaults to 0.
        poll (float): Seconds between pulls while waiting. Defaults to 10.
        **kwargs: :class:`HumanOracle`'s.
    """

    name = 'label_studio'

    def __init__(self, *args, url: str = 'http://127.0.0.1:8080',
                 project: str = 'mmsaal',
                 document_root: Optional[str] = None,
                 token_env: str = TOKEN_ENV, score_thr: float = 0.3,
                 min_boxes: int = 3, score_floor: float = 0.05,
                 wait: float = 0, poll: float = 10,
                 pool_dataset=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.min_boxes = min_boxes
        self.score_floor = score_floor
        self.url = url
        self.project = project
        self.document_root = document_root
        self.token_env = token_env
        self.score_thr = score_thr
        self.wait = wait
        self.poll = poll
        self._pool_dataset = pool_dataset

    def request(self, round_idx: int, query: Query, model=None) -> None:
        """Push the round's tasks, then write the query folder and stop the
        run. A failed push writes nothing: the resumed run asks again."""
        query.info = dict(query.info, oracle=self.name)
        self._push_on_main(round_idx, query, model)
        try:
            super().request(round_idx, query)
        except AwaitingLabels:
            pass
        if is_main_process():
            self._record(round_idx)
        barrier()
        raise AwaitingLabels(self.waiting(round_idx, len(query.indices)))

    def _push_on_main(self, round_idx: int, query: Query, model) -> None:
        """:meth:`push` on the first rank; its error raised on every rank
        (so none waits in a barrier for a rank that failed)."""
        failure = [None]
        if is_main_process():
            try:
                self._pushed = self.push(round_idx, query, model)
            except LabelStudioError as err:
                failure = [str(err)]
        broadcast_object_list(failure)
        if failure[0] is not None:
            raise LabelStudioError(failure[0])

    def _record(self, round_idx: int) -> None:
        dump_json_atomic(self._pushed,
                         osp.join(self.store.query_dir(round_idx), RECORD))

    def waiting(self, round_idx: int, left: int) -> str:
        return (f'Active learning round {round_idx} waits for labels in '
                f'Label Studio ({self.url}, project {self.project!r}): '
                f'{left} images to annotate, most informative first. '
                f'Annotate them, then go on with:\n  python '
                f'tools/train_al.py {self.config} --work-dir {self.work_dir} '
                f'--resume')

    def wait_for_labels(self, round_idx: int, query: Query) -> None:
        """Go on once the pulled annotations cover the query. A query
        whose tasks are not in Label Studio (its push failed, or its
        project was deleted and its record with it) is pushed again,
        without pre-annotations."""
        if not read_record(self.store, round_idx):
            self._push_on_main(round_idx, query, None)
            if is_main_process():
                self._record(round_idx)
            barrier()
            raise AwaitingLabels(self.waiting(round_idx, len(query.indices)))
        missing = [int(i) for i in query.indices
                   if not self.units.labels_arrived(
                       self.pool.get_data_info(int(i)), query, int(i))]
        if missing:
            record = read_record(self.store, round_idx)
            raise AwaitingLabels(
                f'Active learning round {round_idx} still waits for '
                f'{len(missing)} of its {len(query.indices)} images in Label '
                f'Studio ({record.get("url", self.url)}, project '
                f'{record.get("title", self.project)!r}). Annotate them, '
                f'then go on with:\n  python tools/train_al.py {self.config} '
                f'--work-dir {self.work_dir} --resume')

    # ---------------------------------------------------------------- push
    def push(self, round_idx: int, query: Query, model=None) -> dict:
        """Make the round's tasks (those not there yet) in the project;
        returns the query folder's record of them."""
        client = LabelStudioClient(self.url, self.token_env)
        segmentation = self._kind() == 'maps'
        classes = list(self.pool.metainfo.get('classes', ()))
        project = client.project_by_title(self.project)
        if project is None:
            project = client.call('POST', '/api/projects', dict(
                title=self.project,
                label_config=label_config(classes, segmentation,
                                          self._kind())))
        pid = project['id']
        infos = {int(i): self.pool.get_data_info(int(i))
                 for i in query.indices}
        folder = osp.commonpath(
            [osp.dirname(osp.abspath(info['img_path']))
             for info in infos.values()])
        self._storage(client, pid, folder)
        root = self.document_root or self._served_root(
            client, osp.abspath(infos[next(iter(infos))]['img_path']))
        run = self.store.run_id()
        done = {task['data'].get('mmsaal_index')
                for task in client.tasks(pid)
                if task['data'].get('mmsaal_run') == run
                and task['data'].get('mmsaal_round') == round_idx}
        todo = [i for i in infos if i not in done]
        predictions = self._predictions(model, todo, query)
        scores = query.scores or {}
        tasks = []
        for index in todo:
            info = infos[index]
            path = osp.abspath(info['img_path'])
            relative = osp.relpath(path, root)
            if relative.startswith('..'):
                raise LabelStudioError(
                    f'{path} lies outside the document root {root} the '
                    f'server serves: set active_learning.oracle.'
                    f'document_root (and the server\'s LABEL_STUDIO_LOCAL_'
                    f'FILES_DOCUMENT_ROOT) to a folder that holds the pool.')
            image = '/data/local-files/?' + urllib.parse.urlencode(
                dict(d=relative))
            if client.status(image) != 200:
                raise LabelStudioError(
                    f'Label Studio at {self.url} does not serve {path} '
                    f'({image}): start it with LABEL_STUDIO_LOCAL_FILES_'
                    f'SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_'
                    f'DOCUMENT_ROOT={root} (or set active_learning.oracle.'
                    f'document_root to the folder it serves), and keep the '
                    f'image there.')
            score = float(scores.get(index, 0.0))
            task = dict(data=dict(
                image=image, mmsaal_index=index, mmsaal_round=round_idx,
                mmsaal_run=run, mmsaal_path=self.names[index],
                mmsaal_score=score))
            results = predictions.get(index)
            if results is not None:
                task['predictions'] = [dict(
                    model_version=f'round {round_idx}', score=score,
                    result=results)]
            tasks.append(task)
        if tasks:
            client.call('POST', f'/api/projects/{pid}/import', tasks)
        views = client.call('GET', f'/api/dm/views?project={pid}')
        if not any('-tasks:predictions_score' in str(v.get('data', {}))
                   for v in views or ()):
            client.call('POST', '/api/dm/views', dict(project=pid, data=dict(
                title='most informative first',
                ordering=['-tasks:predictions_score'])))
        print_log(f'Label Studio: {len(tasks)} tasks of round {round_idx} '
                  f'in project {self.project!r} ({self.url}/projects/{pid})',
                  logger='current')
        return dict(url=self.url, project=pid, title=self.project,
                    round=round_idx, run=run, tasks=len(infos))

    def _kind(self) -> str:
        """What a label of the pool is: ``'boxes'``, ``'class'`` or
        ``'maps'``."""
        return self.label_files.kind

    def _served_root(self, client: LabelStudioClient, path: str) -> str:
        """The server's document root: the nearest folder above ``path``
        relative to which the server serves it."""
        folder = osp.dirname(path)
        while True:
            image = '/data/local-files/?' + urllib.parse.urlencode(
                dict(d=osp.relpath(path, folder)))
            if client.status(image) == 200:
                return folder
            if folder == osp.dirname(folder):
                raise LabelStudioError(
                    f'Label Studio at {self.url} does not serve {path}: '
                    f'start it with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED'
                    f'=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to '
                    f'a folder that holds the pool (e.g. {osp.dirname(path)}'
                    f'), and keep the images there.')
            folder = osp.dirname(folder)

    @staticmethod
    def _storage(client: LabelStudioClient, pid: int, root: str) -> None:
        storages = client.call('GET', f'/api/storages/localfiles?project={pid}')
        if not any(osp.abspath(s.get('path', '')) == osp.abspath(root)
                   for s in storages or ()):
            try:
                client.call('POST', '/api/storages/localfiles', dict(
                    project=pid, path=osp.abspath(root), title='mmsaal pool',
                    use_blob_urls=False))
            except LabelStudioError as err:
                if ' 400 ' not in str(err):
                    raise
                raise LabelStudioError(
                    f'Label Studio refused to serve the pool folder {root} '
                    f'as local files: start it with LABEL_STUDIO_LOCAL_FILES_'
                    f'SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_'
                    f'DOCUMENT_ROOT set to {root} or a folder above it.'
                ) from None

    def _predictions(self, model, indices: List[int],
                     query: Query) -> Dict[int, List[dict]]:
        """The model's pre-annotations of ``indices`` (none without a
        model: round 0)."""
        if model is None or not indices or self._pool_dataset is None:
            return {}
        import torch
        from mmengine.dataset import pseudo_collate
        dataset = self._pool_dataset()
        classes = list(self.pool.metainfo.get('classes', ()))
        was_training = model.training
        model.eval()
        out = {}
        try:
            for index in indices:
                with torch.no_grad():
                    prediction = model.test_step(
                        pseudo_collate([dataset[index]]))[0]
                size = tuple(prediction.ori_shape[:2])
                if self._kind() == 'class':
                    scores = prediction.pred_score.cpu().numpy()
                    best = int(scores.argmax())
                    out[index] = [dict(
                        from_name='label', to_name='image', type='choices',
                        value=dict(choices=[str(classes[best])]),
                        score=round(float(scores[best]), 4))]
                elif self._kind() == 'maps':
                    # Whole-image queries: the image is the one region.
                    labels = prediction.pred_sem_seg.data[0].cpu().numpy()
                    corners, side = ([[0, 0]], size) if query.units is None \
                        else (query.units[index]['corners'], self.units.side)
                    out[index] = region_results(corners, side, size, labels,
                                                classes)
                else:
                    found = prediction.pred_instances
                    scores = found.scores.cpu().numpy()
                    keep = pre_annotated(scores, self.score_thr,
                                         self.min_boxes, self.score_floor)
                    out[index] = box_results(
                        found.bboxes.cpu().numpy()[keep],
                        found.labels.cpu().numpy()[keep], classes, size,
                        scores[keep])
        finally:
            model.train(was_training)
        return out


# ------------------------------------------------------------------- pull
def read_record(store: RoundStore, round_idx: int) -> dict:
    path = osp.join(store.query_dir(round_idx), RECORD)
    if not osp.exists(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def pull(store: RoundStore, pool_cfg: dict, token_env: str = TOKEN_ENV
         ) -> Optional[Tuple[int, int, List[str]]]:
    """Bring the finished annotations of the waiting query into the
    dataset. Returns ``(annotated, queried, notes)``, or None when no query
    waits in Label Studio. Nothing is written unless every annotation
    taken converts."""
    round_idx = store.pending_query()
    record = read_record(store, round_idx) if round_idx is not None else {}
    if not record:
        return None
    folder = store.query_dir(round_idx)
    with open(osp.join(folder, 'query.json'), encoding='utf-8') as f:
        coco = json.load(f)
    client = LabelStudioClient(record['url'], token_env)
    if client.project(record['project']) is None:
        raise LabelStudioError(
            f'the Label Studio project {record["title"]!r} (id '
            f'{record["project"]}) of round {round_idx} is gone from '
            f'{record["url"]}. To label the round again, delete '
            f'{osp.join(folder, RECORD)} and resume: its project and tasks '
            f'are made again (the labeled set is as it was).')
    images = {int(image['id']): image for image in coco['images']}
    latest, notes = {}, []
    ignored = 0
    for task in client.tasks(record['project']):
        data = task.get('data', {})
        done = [a for a in task.get('annotations', [])
                if not a.get('was_cancelled')]
        if not done:
            continue
        index = data.get('mmsaal_index')
        if data.get('mmsaal_run') != record['run'] or data.get(
                'mmsaal_round') != round_idx or index not in images:
            ignored += 1
            continue
        chosen = max(done, key=lambda a: (a.get('updated_at') or '',
                                          a.get('id', 0)))
        if index in latest:
            notes.append(f'{images[index]["file_name"]} has two tasks; the '
                         f'one annotated last counts')
            if (chosen.get('updated_at') or '') < (
                    latest[index].get('updated_at') or ''):
                continue
        latest[index] = chosen
    if ignored:
        notes.append(f'{ignored} annotated tasks are not of this round\'s '
                     f'query (another round, run or image): left out')
    files = label_files_of(pool_cfg)
    if files.kind == 'class':
        changed = _write_classes(latest, images, files, round_idx)
    elif files.kind == 'maps':
        changed = _write_label_maps(latest, images, coco)
    else:
        changed = _write_boxes(latest, images, coco, pool_cfg, round_idx)
    if latest and not changed:
        notes.append('the dataset holds these labels already: nothing '
                     'changed')
    return len(latest), len(images), notes


def _size(image: dict) -> Tuple[int, int]:
    if image.get('height') and image.get('width'):
        return int(image['height']), int(image['width'])
    from PIL import Image
    with Image.open(image['path']) as opened:
        return opened.height, opened.width


def _write_boxes(latest: dict, images: dict, coco: dict, pool_cfg: dict,
                 round_idx: int) -> bool:
    """The annotated boxes into the pool's label files (checked as
    ``tools/import_labels.py`` checks a file); False when they held them
    already (nothing written)."""
    files = label_files_of(pool_cfg)
    classes = files.classes
    labels = dict(images=[], annotations=[], categories=[
        dict(id=i + 1, name=name) for i, name in enumerate(classes)])
    for index, annotation in latest.items():
        image = images[index]
        height, width = _size(image)
        labels['images'].append(dict(id=index, file_name=image['file_name'],
                                     width=width, height=height))
        for item in annotation.get('result', []):
            if item.get('type') != 'rectanglelabels' or item.get(
                    'from_name') != 'label':
                continue
            value = item['value']
            if value.get('rotation'):
                raise LabelStudioError(
                    f'a box of {image["file_name"]} is rotated '
                    f'({value["rotation"]} degrees): mmdet boxes are upright. '
                    f'Straighten it in Label Studio, then resume.')
            name = value['rectanglelabels'][0]
            if name not in classes:
                raise LabelStudioError(
                    f'{image["file_name"]} (Label Studio task '
                    f'{annotation.get("task", "?")}): a box is labeled '
                    f'{name!r}, which is not one of the classes {classes}. '
                    f'Relabel it in Label Studio with one of them (the '
                    f'names of the project\'s label config), then resume. '
                    f'Nothing was written.')
            box = [value['x'] * width / 100, value['y'] * height / 100,
                   value['width'] * width / 100,
                   value['height'] * height / 100]
            labels['annotations'].append(dict(
                id=len(labels['annotations']) + 1, image_id=index,
                category_id=classes.index(name) + 1, bbox=box,
                area=box[2] * box[3], iscrowd=0))
    query = dict(images=[dict(image, id=int(image['id']))
                         for image in coco['images']])
    checked = Checked(labels, query, classes, max_boxes=10_000)
    problems = checked.lines()
    if problems:
        raise LabelStudioError(
            'the Label Studio annotations do not convert (nothing was '
            'written): ' + '; '.join(problems[:10]) + '. Fix them in Label '
            'Studio, then resume.')
    return files.write_boxes(checked, list(checked.matched), True,
                             round_idx).changed


def _write_classes(latest: dict, images: dict, files, round_idx: int
                   ) -> bool:
    """Each annotated image's chosen class into the pool (the image moved
    into its class's folder); False when every one is there already."""
    chosen = {}
    for index, annotation in latest.items():
        image = images[index]
        found = [item['value']['choices'] for item in annotation.get(
            'result', []) if item.get('type') == 'choices'
            and item.get('value', {}).get('choices')]
        if len(found) != 1 or len(found[0]) != 1:
            raise LabelStudioError(
                f'{image["file_name"]} (Label Studio task '
                f'{annotation.get("task", "?")}) has {len(found)} class '
                f'choices: choose one class, then resume. Nothing was '
                f'written.')
        chosen[image['file_name']] = found[0][0]
    try:
        return files.write_classes(chosen, round_idx).changed
    except WorkDirError as err:
        raise LabelStudioError(f'{err} Fix it in Label Studio, then '
                               f'resume.') from None


def _write_label_maps(latest: dict, images: dict, coco: dict) -> int:
    """The annotated polygons into each image's label map (its other
    pixels as they were, or unlabeled); returns how many maps changed (a
    map that holds them already is not written again)."""
    classes = [c['name'] for c in sorted(coco['categories'],
                                         key=lambda c: c['id'])]
    maps = {}
    for index, annotation in latest.items():
        image = images[index]
        target = image.get('seg_map_path')
        if not target:
            raise LabelStudioError(
                f'the query lists no label map path for {image["file_name"]}'
                f': region queries need a dataset that reads label maps.')
        height, width = _size(image)
        labels = cv2.imread(target, cv2.IMREAD_UNCHANGED) if osp.exists(
            target) else None
        before = labels
        if labels is None or labels.shape != (height, width):
            labels = np.full((height, width), IGNORE_INDEX, np.uint8)
        else:
            labels = labels.copy()
        for item in annotation.get('result', []):
            if item.get('type') != 'polygonlabels':
                continue
            name = item['value']['polygonlabels'][0]
            if name not in classes:
                raise LabelStudioError(
                    f'{image["file_name"]}: the class {name!r} is not one of '
                    f'the dataset\'s {classes}. Fix it in Label Studio, then '
                    f'resume.')
            points = np.asarray(item['value']['points'], np.float64)
            points = np.round(points * [width / 100, height / 100] -
                              0.5).astype(np.int32)
            cv2.fillPoly(labels, [points], int(classes.index(name)))
        if before is None or before.shape != labels.shape or \
                before.dtype != labels.dtype or (before != labels).any():
            maps[target] = labels
    for target, labels in maps.items():
        ok, png = cv2.imencode('.png', labels)
        if not ok:
            raise OSError(f'cannot encode {target}')
        with atomic_write(target) as f:
            f.write(png.tobytes())
    return len(maps)


def pull_until_done(store: RoundStore, pool_cfg: dict, token_env: str,
                    wait: float = 0, poll: float = 10
                    ) -> Optional[Tuple[int, int, List[str]]]:
    """:func:`pull`, again every ``poll`` seconds for up to ``wait``
    seconds while images are left, with a progress line. Returns the last
    pull's result."""
    start = time.time()
    while True:
        result = pull(store, pool_cfg, token_env)
        if result is None:
            return None
        annotated, queried, notes = result
        for note in notes:
            print_log(f'Label Studio: {note}.', logger='current')
        print_log(f'Label Studio: {annotated} of {queried} images of round '
                  f'{store.pending_query()} annotated.', logger='current')
        if annotated >= queried or time.time() - start >= wait:
            return result
        time.sleep(min(poll, max(0.0, wait - (time.time() - start))))
