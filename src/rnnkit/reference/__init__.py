"""The NumPy reference engine: hand-written BPTT, the teaching engine and test oracle.

This package never imports torch.
"""

__all__: list[str] = []
