# Copyright (c) mmsaal contributors. All rights reserved.
from .hooks import *  # noqa: F401,F403
from .scoring import score_candidates, unwrap_model

__all__ = ['score_candidates', 'unwrap_model']
