"""Models that leave rnnkit: ONNX export of the rnnkit.nn modules and the applications.

``export_module`` exports an ``rnnkit.nn`` sequence module; each application's
``rnnkit.<app>.export`` builds on the helpers of :mod:`rnnkit.export.onnx`, and
``Estimator.export_onnx`` picks the right one. onnx, onnxruntime and onnxscript
are an optional extra (``pip install "rnnkit[onnx]"``), imported only when used.
"""

from rnnkit.export.onnx import export_module, require_onnx
from rnnkit.export.recurrent import ExportRecurrent

__all__ = ["ExportRecurrent", "export_module", "require_onnx"]
