"""Package hygiene: no pickle, no run-time reads of /work/shared, class names, small size."""

import ast
from pathlib import Path

import batscope.datasets as ds

PKG = Path(ds.__file__).resolve().parent


def _code_strings(path: Path):
    """String constants in the module's code, excluding docstrings and comments."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.value


def test_no_pickle_and_no_shared_paths():
    for py in PKG.glob("*.py"):
        tree = ast.parse(py.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any("pickle" in n for n in names), py
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                assert isinstance(node.value, ast.Constant) and node.value.value is False, py
        assert not any("/work/shared" in s for s in _code_strings(py)), py


def test_package_data_small():
    total = sum(p.stat().st_size for p in (PKG / "sample").iterdir())
    assert total < 5_000_000


def test_class_names():
    for name in ds.list_datasets():
        spec = ds.get_spec(name)
        assert len(ds.class_names(name)) == spec.n_classes
    assert ds.class_names("fashion-mnist")[9] == "Ankle boot"
    assert ds.class_names("emnist")[36] == "a"
