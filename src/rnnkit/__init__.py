"""rnnkit: recurrent neural networks you can read, verify and use.

Public API (everything else is internal):

- ``rnnkit.nn``: torch building blocks (cells, sequence modules).
- ``rnnkit.reference``: the NumPy engine with hand-written BPTT (never imports torch).
- ``rnnkit.UserError``: the exception for bad user input (the CLI prints it on one line).
"""

from __future__ import annotations

from rnnkit.errors import UserError

__version__ = "0.1.0"

__all__ = ["UserError", "__version__"]
