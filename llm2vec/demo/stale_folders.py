"""Cleaning up the temporary siblings that interrupted atomic writes leave behind.

The demo's builders write into ``.<name>.tmp-<pid>`` (and move an old result to
``.<name>.old-<pid>``) next to the output folder and rename at the end; a run killed in between
leaves such a folder, which the next run removes once its process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 only checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def remove_stale_siblings(output_dir: Path, log: Callable[[str], None]) -> None:
    """Delete temporary siblings of ``output_dir`` left by interrupted runs whose process is gone."""
    pattern = re.compile(rf"^\.{re.escape(output_dir.name)}\.(?:tmp|old)-(\d+)$")
    if not output_dir.parent.is_dir():
        return
    for path in output_dir.parent.iterdir():
        match = pattern.match(path.name)
        if match and path.is_dir() and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            log(f"removing leftover temporary folder {path}")
            shutil.rmtree(path, ignore_errors=True)
