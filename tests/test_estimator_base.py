"""The shared estimator contract (rnnkit.estimator) on a small estimator of its own.

The five applications are checked against the same contract in test_contract.py;
here the base class's own mechanisms: keyword overrides, the parameter protocol
(scikit-learn's clone), runtime options, NotFittedError, save/load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from rnnkit import NotFittedError, UserError
from rnnkit.estimator import Estimator, resolve_device, use_threads
from rnnkit.training import TrainConfig, load_model_weights, read_json


@dataclass(kw_only=True)
class ToyModelConfig:
    hidden_size: int = 4
    dropout: float = 0.0


@dataclass(kw_only=True)
class ToyDataConfig:
    source: str = "none"
    dropout: float = 0.5  # the same leaf name as model.dropout: ambiguous on purpose


@dataclass(kw_only=True)
class ToyConfig:
    data: ToyDataConfig = field(default_factory=ToyDataConfig)
    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    epochs: int = 1


class Toy(Estimator):
    app = "toy"
    config_class = ToyConfig
    artifact_files = ("toy.json",)

    def fit(self) -> Toy:
        cfg = self._runtime_config()
        torch.manual_seed(cfg.train.seed)
        self.model_ = torch.nn.Linear(2, cfg.model.hidden_size)
        self.metrics_ = {"val_loss": 0.5, "measured_on": "nothing"}
        return self

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        with torch.no_grad():
            return self.model_(x)

    def _artifacts(self) -> dict:
        return {"toy.json": {"hello": 1}}

    def _restore(self, directory: Path) -> None:
        assert read_json(directory / "toy.json") == {"hello": 1}
        self.model_ = torch.nn.Linear(2, self.config.model.hidden_size)
        load_model_weights(self.model_, directory)


class Other(Toy):
    app = "other"


def test_keyword_overrides_short_dotted_and_double_underscore() -> None:
    est = Toy(hidden_size=8, epochs=3, train__lr=0.01, **{"model.dropout": 0.1})
    assert est.config.model.hidden_size == 8
    assert est.config.epochs == 3
    assert est.config.train.lr == 0.01
    assert est.config.model.dropout == 0.1


def test_unknown_and_ambiguous_overrides_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="unknown option hiden_size.*did you mean hidden_size"):
        Toy(hiden_size=8)
    with pytest.raises(
        UserError, match="dropout is ambiguous; pass data__dropout or model__dropout"
    ):
        Toy(dropout=0.2)
    with pytest.raises(UserError, match="must be int"):
        Toy(hidden_size="wide")
    with pytest.raises(UserError, match="config or preset, not both"):
        Toy(config=ToyConfig(), preset="x")
    with pytest.raises(UserError, match="unknown preset"):
        Toy(preset="nope")


def test_get_params_rebuilds_and_set_params_changes_config() -> None:
    est = Toy(hidden_size=8, seed=3, threads=1, verbose=False)
    clone = Toy(**est.get_params())
    assert clone.config == est.config and clone.seed == 3 and clone.threads == 1
    assert clone.config is not est.config  # a copy, as sklearn.base.clone expects
    assert clone.set_params(hidden_size=16) is clone
    assert clone.config.model.hidden_size == 16 and est.config.model.hidden_size == 8
    assert "hidden_size=8" in repr(est) and "seed=3" in repr(est)


def test_sklearn_clone_works() -> None:
    base = pytest.importorskip("sklearn.base")
    est = Toy(hidden_size=5)
    clone = base.clone(est)
    assert clone.config == est.config and clone is not est


def test_runtime_options_seed_device_verbose() -> None:
    est = Toy(seed=7, verbose=False)
    cfg = est._runtime_config()
    assert cfg.train.seed == 7 and cfg.train.progress == "none"
    assert est.config.train.seed != 7 or TrainConfig().seed == 7  # the stored config is untouched


def test_unavailable_device_is_refused_before_any_work() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="no CUDA GPU; use --device cpu"):
        Toy(device="cuda").fit()
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu9")


def test_threads_are_applied_and_restored() -> None:
    before = torch.get_num_threads()
    with use_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(UserError, match="threads must be a positive integer"):
        Toy(threads=0)


def test_not_fitted_error_is_also_attribute_and_value_error() -> None:
    est = Toy()
    with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(\) first or Toy.load"):
        est.predict(torch.zeros(1, 2))
    with pytest.raises(AttributeError):
        est.save("never")
    with pytest.raises(ValueError):
        est.predict(torch.zeros(1, 2))


def test_save_load_round_trip_with_card_and_manifest(tmp_path: Path) -> None:
    est = Toy(hidden_size=3).fit()
    x = torch.randn(4, 2)
    path = est.save(tmp_path / "toy")
    assert {"config.json", "model.safetensors", "toy.json", "README.md", "manifest.json"} <= {
        p.name for p in path.iterdir()
    }
    manifest = read_json(path / "manifest.json")
    assert manifest["app"] == "toy" and manifest["estimator"] == "Toy"
    assert manifest["metrics"]["val_loss"] == 0.5
    card = (path / "README.md").read_text()
    assert "Toy.load" in card and "val_loss" in card and "Measured on nothing" in card
    back = Toy.load(path)
    assert torch.equal(back.predict(x), est.predict(x))
    assert back.metrics_["val_loss"] == 0.5


def test_load_refuses_another_applications_folder(tmp_path: Path) -> None:
    path = Other(hidden_size=3).fit().save(tmp_path / "other")
    with pytest.raises(UserError, match="holds a other model .*not a toy model; load it with"):
        Toy.load(path)


def test_load_refuses_a_newer_format(tmp_path: Path) -> None:
    import json

    path = Toy().fit().save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="written by a newer rnnkit .*upgrade rnnkit"):
        Toy.load(path)


def test_a_legacy_folder_with_an_emptied_artifact_is_one_line_damaged(tmp_path: Path) -> None:
    path = Toy().fit().save(tmp_path / "m")
    (path / "manifest.json").unlink()  # as written before manifests existed
    (path / "toy.json").write_text("{}")

    class Strict(Toy):
        def _restore(self, directory: Path) -> None:
            self.hello_ = read_json(directory / "toy.json")["hello"]  # KeyError on {}

    with pytest.raises(UserError, match=r"^damaged: .* does not hold a complete toy model"):
        Strict.load(path)
