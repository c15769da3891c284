"""The teaching experiments: ``rnnkit gradients`` and ``rnnkit lab``.

- :mod:`rnnkit.experiments.gradients`: how far back a gradient reaches
  through time in an RNN, an LSTM and a GRU (NumPy engine, float64,
  cross-checked against torch.autograd); the experiment itself is in
  :mod:`~rnnkit.experiments.gradient_flow`.
- :mod:`rnnkit.experiments.lab`: which cells learn long-range dependencies
  (adding, copy memory, selective copying) and at what length; one run in
  :mod:`~rnnkit.experiments.lab_run`, pictures and tables in
  :mod:`~rnnkit.experiments.lab_plots`, the tasks in
  :mod:`~rnnkit.experiments.tasks`.

The modules are imported by name (``from rnnkit.experiments.lab import
LabConfig, run_lab``); this package imports none of them itself, so
``rnnkit gradients`` runs without importing torch.
"""

__all__ = ["gradient_flow", "gradients", "lab", "lab_plots", "lab_run", "tasks"]
