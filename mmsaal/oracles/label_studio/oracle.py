# Copyright (c) mmsaal contributors. All rights reserved.
"""The Label Studio oracle: each query round becomes tasks of one Label
Studio project, with the model's predictions as pre-annotations and the
most informative images first; ``--resume`` takes the annotations back
(:mod:`.pull`) before any dataset reads them."""
import os.path as osp
import urllib.parse
from typing import Dict, List, Optional

from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.logging import print_log

from mmsaal.pool import RoundStore, dump_json_atomic
from mmsaal.registry import ORACLES
from mmsaal.rounds.units import Query
from mmsaal.utils.errors import FieldError
from ..base import AwaitingLabels, LabelingContext, Taken
from ..human import HumanOracle
from .client import TOKEN_ENV, LabelStudioClient, LabelStudioError
from .label_config import (box_results, label_config, pre_annotated,
                           region_results)
from .pull import RECORD, pull_until_done, read_record


@ORACLES.register_module()
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
    """

    name = 'label_studio'
    # Where the server runs and what it pre-annotates, not what is labeled.
    FREE_FIELDS = ('url', 'wait', 'poll', 'document_root', 'token_env',
                   'score_thr', 'min_boxes', 'score_floor')
    FIELDS_NOTE = (' (the token comes from the environment variable '
                   'token_env names, never from the config)')

    def __init__(self, context: LabelingContext,
                 url: str = 'http://127.0.0.1:8080',
                 project: str = 'mmsaal',
                 document_root: Optional[str] = None,
                 token_env: str = TOKEN_ENV, score_thr: float = 0.3,
                 min_boxes: int = 3, score_floor: float = 0.05,
                 wait: float = 0, poll: float = 10) -> None:
        if getattr(context.units, 'granularity', 'image') == 'pixel':
            raise FieldError(
                "ActiveLearningHook.oracle=dict(type='LabelStudioOracle') "
                "shows queried regions to label, and granularity='pixel' "
                "queries single pixels (thousands an image): use "
                "granularity='region', or oracle='human' with label maps.")
        super().__init__(context)
        self.min_boxes = min_boxes
        self.score_floor = score_floor
        self.url = url
        self.project = project
        self.document_root = document_root
        self.token_env = token_env
        self.score_thr = score_thr
        self.wait = wait
        self.poll = poll
        self._pool_dataset = context.pool_dataset

    @classmethod
    def take_labels(cls, store: RoundStore, pool_cfg: dict, fields: dict,
                    wait: float = 0) -> Optional[Taken]:
        """Pull the waiting round's finished annotations (see
        :mod:`.pull`), waiting up to ``wait`` seconds for the rest."""
        result = pull_until_done(store, pool_cfg,
                                 fields.get('token_env', TOKEN_ENV), wait,
                                 fields.get('poll', 10))
        if result is None:
            return None
        return Taken(*result, source='Label Studio')

    @classmethod
    def wait_seconds(cls, fields: dict) -> float:
        return float(fields.get('wait', 0))

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
