"""Progress bars for long work (transcribing many files, synthesising long text, evaluating): one policy.

A bar goes to stderr. By default (``enabled=None``) it shows only when stderr is a terminal, and only once the work
has run for ``DELAY_S`` seconds, so short jobs and logs stay clean; ``enabled=True`` (``--progress``) shows it at
once wherever stderr goes, ``False`` (``--no-progress``) never.
"""

from __future__ import annotations

import sys
from typing import Any

DELAY_S = 2.0  # an automatic bar appears once the work has taken this long


def progress_bar(total: float | None, *, desc: str, unit: str, enabled: bool | None = None, **kwargs: Any):
    """A tqdm bar on stderr following the policy above (call ``update(n)`` and ``close()`` on it)."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show,
                delay=DELAY_S if enabled is None else 0.0, dynamic_ncols=True, **kwargs)
