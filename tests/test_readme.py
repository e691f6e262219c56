"""The README's engine example runs as written and does what its comments say."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_engine_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)  # noqa: S102 - our own README
    net, grads, u = ns["net"], ns["grads"], ns["u"]
    assert [g.shape for g in grads] == [w.shape for w in net.weights]
    assert u.shape == (2, 400) and np.isfinite(u).all()
    phi, mu, delta = ns["phi"], ns["mu"], ns["delta"]
    np.testing.assert_allclose(np.nan_to_num(phi + mu), np.nan_to_num(delta), atol=1e-6)
