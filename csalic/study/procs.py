"""Whether a process still runs, asked of a pid by the keeper's registry (is the recorded keeper
alive?) and by the dispatcher (is the stage process that submitted a task alive?)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` names a process (one of another user counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
