# Copyright (c) mmsaal contributors. All rights reserved.
"""Label a round in Label Studio: the query becomes tasks of a Label
Studio project, with the model's predictions as pre-annotations, most
informative first; the annotations come back into the dataset.

Only Label Studio's REST API is used (standard library HTTP, no SDK), so
nothing of Label Studio's dependencies meets the training environment.
The access token comes from an environment variable (``LABEL_STUDIO_API_KEY``
by default) and is never written anywhere.

- ``client.py``: the REST calls;
- ``label_config.py``: the labeling interface and the pre-annotations
  (``RectangleLabels`` for detection; ``PolygonLabels`` for segmentation,
  with the queried regions, or the whole queried image, as rectangles of
  their own; ``Choices`` for classification);
- ``oracle.py``: :class:`LabelStudioOracle`, a query round's push (the
  project, the local-files storage, one task per queried image with its
  pool position, path, round, run and score; a view ordered by score);
- ``pull.py``: the finished annotations back into the pool's own label
  files, matched by each task's own data.
"""
from .client import TOKEN_ENV, LabelStudioClient, LabelStudioError
from .oracle import LabelStudioOracle

__all__ = ['TOKEN_ENV', 'LabelStudioClient', 'LabelStudioError',
           'LabelStudioOracle']
