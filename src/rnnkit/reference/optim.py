"""SGD and Adam on dicts of NumPy arrays, updating them in place.

The update rules are torch.optim's (same defaults, same order of operations),
so a run here and a run there with the same gradients give the same weights.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

import numpy as np

__all__ = ["SGD", "Adam"]


def _check_grads(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
    unknown = sorted(set(grads) - set(params))
    if unknown:
        raise ValueError(f"gradients for unknown parameters {unknown}; known: {sorted(params)}")
    for key, g in grads.items():
        if np.shape(g) != params[key].shape:
            raise ValueError(
                f"gradient of {key!r} has shape {np.shape(g)}, parameter has {params[key].shape}"
            )


class SGD:
    """Stochastic gradient descent with optional momentum and L2 weight decay.

    Per parameter p with gradient g (torch.optim.SGD, dampening 0):

    .. math::
        g \\leftarrow g + \\lambda p, \\quad
        b \\leftarrow \\mu b + g \\;(b = g \\text{ at the first step}), \\quad
        p \\leftarrow p - \\eta b

    Args:
        params: the arrays to update in place (a dict name -> array).
        lr: learning rate eta (> 0).
        momentum: mu in [0, 1); 0 is plain SGD.
        weight_decay: lambda >= 0.
    """

    def __init__(
        self,
        params: MutableMapping[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.params = params
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers: dict[str, np.ndarray] = {}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter that has a gradient in ``grads``."""
        _check_grads(self.params, grads)
        for key, g in grads.items():
            p = self.params[key]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                buf = self.buffers.get(key)
                if buf is None:
                    buf = self.buffers[key] = np.array(g, dtype=p.dtype)
                else:
                    buf *= self.momentum
                    buf += g
                g = buf
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1), as torch.optim.Adam computes it.

    Per parameter p with gradient g at step t:

    .. math::
        g \\leftarrow g + \\lambda p, \\quad
        m \\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\quad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2

        p \\leftarrow p - \\frac{\\eta}{1 - \\beta_1^t}
        \\frac{m}{\\sqrt{v} / \\sqrt{1 - \\beta_2^t} + \\epsilon}

    Args:
        params: the arrays to update in place (a dict name -> array).
        lr: learning rate eta (> 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: epsilon > 0, added to the denominator.
        weight_decay: L2 penalty lambda >= 0 (added to the gradient, not AdamW).
    """

    def __init__(
        self,
        params: MutableMapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.params = params
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = {k: 0 for k in params}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter that has a gradient in ``grads``."""
        _check_grads(self.params, grads)
        beta1, beta2 = self.betas
        for key, g in grads.items():
            p = self.params[key]
            if self.weight_decay:
                g = g + self.weight_decay * p
            m, v = self.m[key], self.v[key]
            self.t[key] += 1
            t = self.t[key]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * (g * g)
            denom = np.sqrt(v) / np.sqrt(1 - beta2**t) + self.eps
            p -= (self.lr / (1 - beta1**t)) * (m / denom)
