"""docs/tutorial.ipynb runs top to bottom in a fresh Jupyter kernel and teaches what it says.

The notebook is executed with nbclient in the ``python3`` kernel (ipykernel's, which launches
this interpreter); any cell error fails the test. Its printed results are then read back: the
closed-form spike time equals the engine's, the exact gradient agrees with finite differences,
the short MNIST run learns, and the view cells render Panel output.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
PANEL_OUTPUT = "application/vnd.holoviews_exec.v0+json"  # a rendered Panel object


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _cell_printing(nb, pattern: str) -> re.Match:
    for cell in nb.cells:
        if cell.cell_type == "code" and (m := re.search(pattern, _text(cell))):
            return m
    raise AssertionError(f"no cell printed {pattern!r}")


def _launches_this_python(argv0: str) -> bool:
    # jupyter_client starts a spec whose command is a bare "python" with its own interpreter
    version = sys.version_info
    bare = {"python", f"python{version.major}", f"python{version.major}.{version.minor}"}
    return argv0 in bare or Path(argv0).resolve() == Path(sys.executable).resolve()


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    spec = KernelSpecManager().get_kernel_spec("python3")
    if not _launches_this_python(spec.argv[0]):
        pytest.fail(
            f"the python3 Jupyter kernel runs {spec.argv[0]}, not {sys.executable}: "
            "run `python -m ipykernel install --sys-prefix` in this environment"
        )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cwd = tmp_path_factory.mktemp("tutorial")  # whatever the notebook writes stays out of the tree
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()  # raises CellExecutionError, naming the cell, on any error
    return nb


def test_the_closed_form_spike_time_is_the_engines(executed):
    m = _cell_printing(executed, r"difference (\S+) s; u\(t\) - θ = (\S+)")
    assert float(m.group(1)) < 1e-15 and abs(float(m.group(2))) < 1e-12


def test_a_neuron_fires_several_times_and_sits_on_theta_at_each_spike(executed):
    n = int(_cell_printing(executed, r"(\d+) spikes at").group(1))
    assert n > 1
    assert float(_cell_printing(executed, r"over the spikes: (\S+)").group(1)) < 1e-12
    assert _cell_printing(executed, r"single-spike neuron \(S = 1\): (\d+) spike").group(1) == "1"


def test_the_exact_gradient_agrees_with_finite_differences(executed):
    compared = int(_cell_printing(executed, r"compared (\d+) weights").group(1))
    assert compared >= 30  # of 36: few perturbations may change a spike count
    error = _cell_printing(executed, r"max \|exact - FD\| / max\(1, \|exact\|\) = (\S+)")
    assert float(error.group(1)) < 1e-6  # docs/backward.md §8


def test_the_short_training_run_learns(executed):
    accuracies = [
        float(m.group(1))
        for cell in executed.cells
        if cell.cell_type == "code"
        for m in re.finditer(r"test (\d+\.\d)%", _text(cell))
    ]
    assert len(accuracies) == 5 and accuracies[-1] > 50.0  # chance is 10 %


def test_the_view_cells_render_panel_output(executed):
    shown = [
        o.data["text/plain"].split("(")[0]
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if PANEL_OUTPUT in o.get("data", {}) and "text/plain" in o.data
    ]
    assert shown == ["NetworkViews", "MembraneView"]  # the four views in tabs, then one alone
    assert _cell_printing(executed, r"sample 7: label (\d), predicted (-?\d)")
