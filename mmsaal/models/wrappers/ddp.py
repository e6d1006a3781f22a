# Copyright (c) mmsaal contributors. All rights reserved.
from typing import Optional, Sequence

import torch
from mmengine.model import MMDistributedDataParallel

from mmsaal.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class AnyDeviceDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps a CPU model.

    mmengine's Runner always passes ``device_ids=[LOCAL_RANK]``, which torch
    refuses for a module on the CPU (gloo training). This wrapper drops
    ``device_ids`` in that case and is otherwise the mmengine wrapper.

    Args:
        module (nn.Module): The model to wrap.
        device_ids (Sequence[int], optional): Kept for a CUDA module,
            dropped for a CPU one. Defaults to None.
        **kwargs: Passed to ``MMDistributedDataParallel``.
    """

    def __init__(self,
                 module: torch.nn.Module,
                 device_ids: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        first = next(module.parameters(), None)
        if first is None or first.device.type == 'cpu':
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
