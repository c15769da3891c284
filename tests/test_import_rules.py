"""The layout rules of docs/architecture.md, checked by parsing every import.

- The core (reference, nn, training, data, config, errors, estimator, ...) never
  imports an application; ``reference`` never imports torch. Only the top level
  (``rnnkit/__init__``, ``cli``, ``serve``) reaches every application.
- No application imports another.
- Inside an application imports run one way: config <- data <- model <-
  estimator <- cli (extras may sit anywhere, but no module imports back into a
  cycle).
- No module of the package passes ~400 lines without saying why at its top.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnkit"
APPS = ("forecast", "sentiment", "textgen", "translate", "speech", "sequence", "experiments")
LAYERS = {"config": 0, "data": 1, "model": 2, "estimator": 4, "cli": 5}
LINE_LIMIT = 400


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (top level and inside functions), absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            # `from rnnkit.x import y` may import the submodule rnnkit.x.y
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def _files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "rnnkit" and parts[1] in APPS else None


# Top-level packages that serve every application (like the CLI): they may import apps.
TOP = ("serve",)


def _is_top(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 1 and parts[0] == "rnnkit" and parts[1] in TOP


def _existing_modules() -> set[str]:
    return {_module_name(p) for p in _files()}


def test_core_never_imports_an_application() -> None:
    bad = []
    for path in _files():
        mod = _module_name(path)
        if _app_of(mod) is not None or mod in ("rnnkit", "rnnkit.cli") or _is_top(mod):
            continue  # rnnkit/__init__ and cli name the apps as strings, imported lazily
        bad += [f"{mod} imports {imp}" for imp in _imports(path) if _app_of(imp)]
    assert not bad, "\n".join(bad)


def test_reference_never_imports_torch() -> None:
    bad = [
        f"{_module_name(p)} imports {imp}"
        for p in (SRC / "reference").rglob("*.py")
        for imp in _imports(p)
        if imp == "torch" or imp.startswith("torch.")
    ]
    assert not bad, "\n".join(bad)


def test_no_application_imports_another() -> None:
    bad = []
    for path in _files():
        app = _app_of(_module_name(path))
        if app is None:
            continue
        for imp in _imports(path):
            other = _app_of(imp)
            if other is not None and other != app:
                bad.append(f"{_module_name(path)} imports {imp}")
    assert not bad, "\n".join(bad)


def _app_graph(app: str) -> dict[str, set[str]]:
    existing = _existing_modules()
    graph: dict[str, set[str]] = {}
    for path in (SRC / app).rglob("*.py"):
        mod = _module_name(path)
        deps = {
            imp
            for imp in _imports(path)
            if imp in existing and imp.startswith(f"rnnkit.{app}.") and imp != mod
        }
        graph[mod] = deps
    return graph


@pytest.mark.parametrize("app", APPS)
def test_imports_inside_an_application_run_one_way(app: str) -> None:
    if not (SRC / app).is_dir():
        pytest.skip(f"rnnkit/{app} does not exist")
    graph = _app_graph(app)
    bad = []
    for mod, deps in graph.items():
        rank = LAYERS.get(mod.rsplit(".", 1)[-1])
        for dep in deps:
            dep_rank = LAYERS.get(dep.rsplit(".", 1)[-1])
            if rank is not None and dep_rank is not None and dep_rank > rank:
                bad.append(
                    f"{mod} imports {dep} (imports run config <- data <- model <- estimator <- cli)"
                )
    # No cycles (the package __init__ re-exports, so it is left out).
    inner = {
        m: {d for d in deps if d != f"rnnkit.{app}"}
        for m, deps in graph.items()
        if m != f"rnnkit.{app}"
    }
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in inner.get(m, ()):
            if state.get(d) == 1:
                bad.append("import cycle: " + " -> ".join([*stack[stack.index(d) :], d]))
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(inner):
        if m not in state:
            visit(m, [m])
    assert not bad, "\n".join(bad)


def test_long_files_say_why() -> None:
    bad = []
    for path in _files():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > LINE_LIMIT:
            head = "\n".join(lines[:20])
            if not re.search(r"(?i)longer than 400 lines", head):
                bad.append(f"{path.relative_to(SRC)}: {len(lines)} lines and no reason at its top")
    assert not bad, "\n".join(bad)


def test_old_homes_are_gone() -> None:
    for old in ("pipelines", "models", "forecasting", "translation"):
        assert not (SRC / old).exists(), f"rnnkit/{old} should be gone (one home per application)"
    # rnnkit/data holds only what two or more applications share.
    users: dict[str, set[str]] = {}
    for path in _files():
        app = _app_of(_module_name(path))
        for imp in _imports(path):
            if app and imp.startswith("rnnkit.data."):
                users.setdefault(imp.split(".")[2], set()).add(app)
    for p in (SRC / "data").glob("*.py"):
        if p.stem != "__init__":
            apps = users.get(p.stem, set())
            assert len(apps) >= 2, f"rnnkit/data/{p.name} is used by {sorted(apps)}: move it there"


def test_packages_declare_all() -> None:
    missing = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("__init__.py")
        if "__all__" not in p.read_text(encoding="utf-8")
    ]
    assert not missing, missing
