# Copyright (c) mmsaal contributors. All rights reserved.
"""Errors a person fixes in the work dir or the config."""


class WorkDirError(RuntimeError):
    """A work dir cannot be used as it is: a damaged or missing round file
    or checkpoint, a lock held, a checkpoint of another run. Its message
    names the file and the fix; ``tools/train_al.py`` prints it alone,
    without a traceback."""


class FieldError(ValueError):
    """A field of the config that cannot work; the message names the field
    and the fix."""


class DataError(ValueError):
    """A file of the dataset cannot be used as it is (a pool image that is
    missing, no image, or too large to decode); the message names the
    file and the fix."""
