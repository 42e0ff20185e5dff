"""The import graph of ``llm2vec/`` goes one way (the table in docs/architecture.md).

Every ``import``/``from`` of an ``llm2vec`` module anywhere in a file (function-level imports
included) is checked against what the importing layer may use; nothing in the library may import
the examples, the entry points or the tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "llm2vec"

#: layer -> the module names (or dotted prefixes) that make it up
LAYERS = {
    "base": ("pooling", "prompts", "tokenization", "model_config", "weights", "packing", "files", "fingerprint",
             "model_sources", "checkpoint_origin"),
    "loss": ("loss",),
    "dataset": ("dataset",),
    "models": ("llm2vec", "llm2vec_q2d_d2q", "llm2vec_contrastive", "llm2vec_mntp", "models"),
    "training": ("training",),
    "evaluation": ("evaluation",),
    "reporting": ("reporting",),
    "export": ("export",),
    "word_task": ("word_task",),
    "testing": ("testing",),
    "package": ("__init__",),
}

#: layer -> the layers it may import (besides itself)
MAY_IMPORT = {
    "base": set(),
    "loss": set(),
    "dataset": {"base"},
    "models": {"loss", "base"},
    "training": {"models", "dataset", "loss", "base", "word_task"},
    "evaluation": {"models", "base"},
    "reporting": {"evaluation.task_lists"},
    "export": {"models", "evaluation.instructions", "base"},
    "word_task": {"dataset"},
    "testing": set(),
    "package": {"models"},
}


def _layer_of(module: str) -> str:
    """``llm2vec.loss.fused_cross_entropy`` -> "loss"; ``llm2vec`` (the package itself) -> "package"."""
    parts = module.split(".")[1:] or ["__init__"]
    for layer, names in LAYERS.items():
        if parts[0] in names:
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _allowed(importer: str, imported: str) -> bool:
    layer = _layer_of(importer)
    target = _layer_of(imported)
    if target == layer:
        return True
    sub = ".".join(imported.split(".")[1:])
    return target in MAY_IMPORT[layer] or any(sub == name or sub.startswith(name + ".") for name in MAY_IMPORT[layer])


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    assert len(FILES) > 30
    for path in FILES:
        _layer_of(_module_name(path))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    module = _module_name(path)
    imported = _imports(path)
    outside = [name for name in imported if name.split(".")[0] in ("experiments", "examples", "anchor_demo", "tests")]
    assert not outside, f"{module} imports {outside}: the library never imports its users"
    wrong = [name for name in imported if name.startswith("llm2vec") and not _allowed(module, name)]
    assert not wrong, f"{module} ({_layer_of(module)}) may not import {wrong}; see docs/architecture.md"


def test_the_rules_can_fail() -> None:
    assert not _allowed("llm2vec.llm2vec", "llm2vec.training.checkpoints")
    assert not _allowed("llm2vec.loss.reconstruction_loss", "llm2vec.llm2vec_q2d_d2q")
    assert not _allowed("llm2vec.reporting.tables", "llm2vec.evaluation.runner")
    assert _allowed("llm2vec.reporting.tables", "llm2vec.evaluation.task_lists")
    assert _allowed("llm2vec.training.arguments", "llm2vec.model_config")
