"""Task networks behind one protocol: ``features(x)`` for D_f, ``predict(x)`` for mAP.

``load_task_network(name, weights=...)`` builds any of them by name; see
:mod:`csalic.tasks.base` for the protocol.
"""

from .base import (
    COCO_CATEGORY_IDS,
    TaskNetwork,
    available_task_networks,
    load_task_network,
)

__all__ = ["COCO_CATEGORY_IDS", "TaskNetwork", "available_task_networks", "load_task_network"]
