"""Files pointbridge writes with customers' data in them (PINs, e-mails, balances)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TextIO

OWNER_ONLY = 0o600


def open_private(path: str | Path, mode: Literal["w", "a"], newline: str | None = None) -> TextIO:
    """Open a UTF-8 text file for writing, created readable by its owner only: under the usual
    umask a new file is world-readable, and these hold PINs. An existing file keeps the mode
    its owner gave it."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    return open(os.open(path, flags, OWNER_ONLY), mode, encoding="utf-8", newline=newline)
