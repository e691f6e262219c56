"""Imports go one way: engine ← datasets ← training ← widgets ← app (engine: nothing of ours).

Every import statement of every module is read with ``ast``, including imports inside functions,
so a lazy import cannot hide a wrong direction.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["engine", "datasets", "training", "widgets", "app"]  # each may import those before it
FORBIDDEN = {layer: set(LAYERS[i + 1 :]) for i, layer in enumerate(LAYERS)}


def _modules():
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            yield layer, path


def imported_layers(path: Path, layer: str) -> set[tuple[str, int]]:
    """The batscope layers a module imports, with the line of each import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside the module's own layer
                continue
            mod = node.module or ""
            names = [mod] if mod != "batscope" else [f"batscope.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "batscope" and len(parts) > 1 and parts[1] in LAYERS:
                found.add((parts[1], node.lineno))
    return found


@pytest.mark.parametrize(
    ("layer", "path"),
    list(_modules()),
    ids=[str(p.relative_to(ROOT)) for _, p in _modules()],
)
def test_module_imports_only_lower_layers(layer, path):
    bad = sorted(
        (other, line) for other, line in imported_layers(path, layer) if other in FORBIDDEN[layer]
    )
    assert not bad, f"{path.relative_to(ROOT)} imports {bad} (layer {layer!r} may not)"


def test_every_layer_is_checked():
    counts = {layer: sum(1 for lay, _ in _modules() if lay == layer) for layer in LAYERS}
    assert all(n > 0 for n in counts.values()), counts


def test_the_checker_sees_a_lazy_import(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(
        "def f():\n    from batscope.app.factory import create_app\n    import batscope.widgets\n"
    )
    assert imported_layers(p, "engine") == {("app", 2), ("widgets", 3)}
