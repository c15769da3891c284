"""Models in and out of rnnkit: Keras 3 interchange (``rnnkit.interop.keras``).

The converters import their framework lazily, when called, so ``import
rnnkit.interop`` needs nothing beyond rnnkit's own dependencies; a missing
framework is a one-line error that names the extra to install
(``pip install "rnnkit[keras]"``).
"""

from rnnkit.interop.keras import KerasStack, from_keras, load_keras_model, to_keras, to_keras_layers

__all__ = ["KerasStack", "from_keras", "load_keras_model", "to_keras", "to_keras_layers"]
