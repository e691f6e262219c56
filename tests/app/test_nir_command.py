"""`batscope export-nir MODEL OUT.nir` (app/nir_command.py) through the CLI entry point."""

import nir
import numpy as np
from batscope.app.cli import main
from batscope.engine import Dense, Network
from batscope.training.files import model_bytes


def _net(reset=None):
    return Network(3, [Dense(4, 0.01, 0.05, reset=reset), Dense(2, 0.01, 0.05)], seed=2)


def test_exports_a_saved_network_and_an_app_model_zip(tmp_path, capsys):
    net = _net()
    net.save(tmp_path / "model")
    (tmp_path / "model.zip").write_bytes(model_bytes(net))
    for model in ("model", "model.npz", "model.zip"):
        out = tmp_path / f"{model}.nir"
        assert main(["export-nir", str(tmp_path / model), str(out)]) == 0
        assert f"wrote {out}" in capsys.readouterr().out
        graph = nir.read(out)
        for k in range(2):
            np.testing.assert_array_equal(graph.nodes[f"linear{k}"].weight, net.weights[k])


def test_refusals_write_nothing_and_exit_1(tmp_path, capsys):
    _net(reset=0.1).save(tmp_path / "model")
    out = tmp_path / "out.nir"
    assert main(["export-nir", str(tmp_path / "model"), str(out)]) == 1
    assert "differs from theta" in capsys.readouterr().err
    assert main(["export-nir", str(tmp_path / "missing.zip"), str(out)]) == 1
    assert "no such model zip" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.npz"]
