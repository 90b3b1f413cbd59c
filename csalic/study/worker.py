"""A Ray worker whose state can no longer be trusted leaves, so Ray runs the task's next attempt on a fresh one.

Ray reuses a worker for the next task of the same job (and the dispatcher's warm workers serve every stage).
An import of torch cut short (an interrupt, an error half-way) leaves ``torch._C`` registered and ``torch``
absent: every later ``import torch`` in that process fails, so each retry on it would fail the same way.
Likewise a task interrupted by ``ray.cancel`` may have been stopped anywhere in native code.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, NoReturn

#: the exit status of a worker that left on purpose (BSD's EX_SOFTWARE)
EXIT_STATUS = 70


def leave(reason: str) -> NoReturn:
    """End this worker process (Ray destroys a worker whose task raised SystemExit, and retries on another)."""
    sys.stderr.write(f"csalic: this Ray worker leaves: {reason}\n")
    raise SystemExit(EXIT_STATUS)


def import_torch() -> Any:
    """``torch``, or leave: a process that cannot import it now never will."""
    if "torch._C" in sys.modules and "torch" not in sys.modules:
        leave("an earlier import of torch was cut short")
    try:
        import torch
    except ModuleNotFoundError:
        raise  # not installed: the same on every worker, so an error line, not a retry
    except BaseException as exc:  # noqa: BLE001 (half-imported: the process is spoilt whatever the cause)
        leave(f"import torch failed half-way ({type(exc).__name__}: {str(exc)[:120]})")
    return torch


def task_body(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a Ray task body: an interrupted task cleans up (its ``finally`` blocks run), then its worker leaves."""

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            leave("the task was interrupted")

    return body
