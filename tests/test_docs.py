"""The project's documentation under docs/ cannot drift silently from the code.

- every function that docs/equations.md names exists (Python names are imported, CUDA names are
  found in their source file), and its table of the paper's equations covers Eq. 1 to 25;
- every citation of a docs page and section anywhere in the tree names an existing page and an
  existing heading;
- headings are numbered simply (1, 2, 3 …; N.1, N.2 … under N), so citations stay short;
- no citation of the former shared spec is left: comments cite docs/.
"""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SUFFIXES = {".py", ".cu", ".cuh", ".cpp", ".sh", ".md", ".json", ".toml", ".js", ".html", ".ipynb"}
SKIP_DIRS = {"venv", "build", "dist", "node_modules", "__pycache__"}  # and hidden folders
SPEC = "method" + ".md"  # the former shared spec, outside the repository

SEC = r"§(\d+(?:\.\d+)*)"
# docs/<page>.md, optionally followed by §N and more §M joined by ", ", "/", "–", "-" or " and ";
# the page and its first section may be split over two lines of a comment or docstring
CITATION = re.compile(rf"docs/([\w.-]+\.md)(?:(?:\s|#|//)+{SEC}((?:\s*(?:,|/|–|-|and)\s*{SEC})*))?")
HEADING = re.compile(r"^(#{2,3})\s+(\d+(?:\.\d+)?)\.?\s+\S", re.M)
PY_NAME = re.compile(r"`(batscope(?:\.\w+)+)`")
SOURCE_NAME = re.compile(r"`([\w./-]+\.(?:cuh|cu|cpp|py)):(\w+)`")


def _tree_files():
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(
            p in SKIP_DIRS or p.startswith(".") or p.endswith(".egg-info") for p in rel.parts[:-1]
        ):
            continue
        if path.suffix in SUFFIXES and path.is_file():
            yield path


def _headings(page: Path) -> list[str]:
    return [m.group(2) for m in HEADING.finditer(page.read_text(encoding="utf-8"))]


def _resolve(dotted: str):
    """Import the longest importable prefix of ``dotted``, then getattr the rest."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for attr in parts[n:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_page_exists_and_is_indexed():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert {"model.md", "forward.md", "backward.md", "equations.md"} <= set(pages)
    for name in pages:
        assert f"({name})" in index, f"docs/README.md does not link {name}"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_headings_are_numbered_simply(page):
    """Top-level sections 1, 2, 3 …; subsections N.1, N.2 … directly under section N."""
    top, sub = 0, 0
    for number in _headings(page):
        if "." not in number:
            top, sub = top + 1, 0
            assert number == str(top), f"{page.name}: section {number} after {top - 1}"
        else:
            sub += 1
            assert number == f"{top}.{sub}", f"{page.name}: subsection {number} under §{top}"


def test_equation_map_names_exist():
    text = (DOCS / "equations.md").read_text(encoding="utf-8")
    py_names = sorted(set(PY_NAME.findall(text)))
    src_names = sorted(set(SOURCE_NAME.findall(text)))
    assert len(py_names) >= 30 and len(src_names) >= 5
    missing = []
    for name in py_names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name} ({exc})")
    for path, name in src_names:
        source = ROOT / path
        if not source.is_file() or not re.search(rf"\b{name}\b", source.read_text("utf-8")):
            missing.append(f"{path}:{name}")
    assert not missing, "docs/equations.md names what the code no longer has: " + ", ".join(missing)


def test_equation_map_covers_every_paper_equation():
    text = (DOCS / "equations.md").read_text(encoding="utf-8")
    table = text.split("## 1.")[1].split("## 2.")[0]
    covered = set()
    for first, last in re.findall(r"^\| (\d+)(?:–(\d+))? \|", table, re.M):
        covered.update(range(int(first), int(last or first) + 1))
    assert covered == set(range(1, 26))


def test_every_docs_citation_points_to_a_page_and_heading():
    headings = {p.name: set(_headings(p)) for p in DOCS.glob("*.md")}
    bad, n = [], 0
    for path in _tree_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in CITATION.finditer(text):
            n += 1
            page = m.group(1)
            where = f"{path.relative_to(ROOT)}: {m.group(0)!r}"
            if page not in headings:
                bad.append(f"{where}: no page docs/{page}")
                continue
            sections = [m.group(2)] if m.group(2) else []
            sections += re.findall(SEC, m.group(3) or "")
            bad += [f"{where}: no §{s}" for s in sections if s not in headings[page]]
    assert n > 100, f"only {n} citations of docs/ found"
    assert not bad, "\n".join(bad)


def test_no_citation_of_the_former_shared_spec():
    left = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in _tree_files()
        if path != Path(__file__).resolve()
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), 1)
        if SPEC in line
    ]
    assert not left, f"cite docs/ instead of {SPEC}: " + ", ".join(left)
