# Copyright (c) mmsaal contributors. All rights reserved.
from .ddp import AnyDeviceDistributedDataParallel

__all__ = ['AnyDeviceDistributedDataParallel']
