"""Training state as safetensors + JSON: nested states, optimizer state, RNG states.

What a checkpoint needs beyond the model's weights, without pickle: a nest of
tuples/lists/dicts of tensors (the TBPTT carry, the optimizer state) becomes a
JSON spec plus a flat dict of tensors, and back.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "flatten_state",
    "get_rng_state",
    "load_optimizer_state",
    "optimizer_state_to_files",
    "set_rng_state",
    "unflatten_state",
]


# ---------------------------------------------------------------------------
# Nested states (TBPTT carry, optimizer state) <-> flat tensor dicts + JSON spec
# ---------------------------------------------------------------------------


def flatten_state(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nest of tuples/lists/dicts of tensors into (JSON spec, flat tensors)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, key: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[key] = o
            return {"tensor": key}
        if isinstance(o, (tuple, list)):
            return {
                "seq": [walk(v, f"{key}.{i}") for i, v in enumerate(o)],
                "tuple": isinstance(o, tuple),
            }
        if isinstance(o, dict):
            return {"dict": [[k, walk(v, f"{key}.{k}")] for k, v in o.items()]}
        return {"value": o}

    return walk(obj, prefix or "s"), tensors


def unflatten_state(spec: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if "tensor" in spec:
        return tensors[spec["tensor"]]
    if "seq" in spec:
        items = [unflatten_state(s, tensors) for s in spec["seq"]]
        return tuple(items) if spec["tuple"] else items
    if "dict" in spec:
        return {k: unflatten_state(v, tensors) for k, v in spec["dict"]}
    return spec["value"]


def optimizer_state_to_files(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``optimizer.state_dict()`` as (JSON-able dict, flat tensor dict)."""
    sd = optimizer.state_dict()
    spec, tensors = flatten_state(sd["state"], "state")
    return {"state": spec, "param_groups": sd["param_groups"]}, tensors


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, spec: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> None:
    """Restore what :func:`optimizer_state_to_files` wrote."""
    state = unflatten_state(spec["state"], tensors)
    # JSON turned the integer parameter ids into strings and tuples into lists.
    state = {int(k): v for k, v in state.items()}
    groups = []
    for g in spec["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------------------
# RNG states: Python, NumPy, torch (CPU + CUDA)
# ---------------------------------------------------------------------------


def get_rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """All global RNG states as (JSON-able dict, tensors)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    json_part = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return json_part, tensors


def set_rng_state(json_part: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    version, internal, gauss = json_part["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
