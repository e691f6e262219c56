"""Exact membrane potential u(t) from the stored spikes (docs/model.md §3)."""

import numpy as np
from batscope.engine import Dense, Network, Normal, SpikeTrains
from scipy.integrate import solve_ivp


def _run(reset=0.2, seed=1):
    rng = np.random.default_rng(seed)
    inp = SpikeTrains.from_arrays(np.sort(rng.uniform(0, 0.4, (2, 6, 3)), axis=2))
    net = Network(
        6,
        [
            Dense(4, 0.1, 0.1, reset, 20, Normal(1.5, 1.0)),
            Dense(3, 0.1, 0.1, reset, 20, Normal(0.5, 0.5)),
        ],
        seed=seed,
    )
    net.forward(inp, 1.0)
    return net, inp


def test_threshold_before_and_reset_after_each_spike():
    for reset in (0.1, 0.2):
        net, _ = _run(reset)
        n_checked = 0
        for layer in range(2):
            out = net.outputs[layer]
            for b in range(2):
                for j in range(out.n_neurons):
                    tk = out.times[b, j, : out.counts[b, j]]
                    if tk.size == 0:
                        continue
                    before = net.membrane(tk - 1e-9, sample=b, layer=layer, neurons=[j])[0]
                    at = net.membrane(tk, sample=b, layer=layer, neurons=j)[0]
                    after = net.membrane(tk + 1e-12, sample=b, layer=layer, neurons=[j])[0]
                    theta = net.layers[layer].theta
                    np.testing.assert_allclose(at, theta, atol=1e-10)  # Theta(0) = 0: not reset yet
                    np.testing.assert_allclose(before, theta, atol=1e-6)
                    np.testing.assert_allclose(after, theta - reset, atol=1e-9)
                    n_checked += tk.size
        assert n_checked > 20


def test_matches_ode_integration():
    """Integrate du/dt = -u/tau + g, dg/dt = -g/tau_s between events with solve_ivp."""
    net, inp = _run()
    layer, b = net.layers[0], 0
    tau, tau_s = layer.tau, layer.tau_s
    w = net.weights[0]
    grid = np.linspace(0.0, 1.0, 401)
    exact = net.membrane(grid, sample=b, layer=0)
    assert exact.shape == (4, grid.size)
    for j in range(4):
        jumps = [(t, "in", w[j, i]) for i in range(6) for t in inp.times[b, i] if np.isfinite(t)]
        out = net.outputs[0]
        jumps += [(t, "reset", layer.reset) for t in out.times[b, j, : out.counts[b, j]]]
        jumps.sort(key=lambda e: e[0])
        state = np.zeros(2)  # (u, g)
        t0 = 0.0
        ref = np.zeros(grid.size)

        def rhs(_t, y):
            return [-y[0] / tau + y[1], -y[1] / tau_s]

        for t_ev, kind, amount in [*jumps, (np.inf, "end", 0.0)]:
            t1 = min(t_ev, 1.0)
            if t1 > t0:
                sol = solve_ivp(
                    rhs, (t0, t1), state, rtol=1e-12, atol=1e-14, method="DOP853", dense_output=True
                )
                sel = (grid > t0) & (grid <= t1)  # before the event at t1 (strict Theta)
                if sel.any():
                    ref[sel] = sol.sol(grid[sel])[0]
                state = sol.y[:, -1].copy()
            if t_ev > 1.0:
                break
            if kind == "in":
                state[1] += amount  # g jumps by w
            else:
                state[0] -= amount  # u drops by the reset amount
            t0 = t1
        # grid points exactly at an event are evaluated before it (strict Theta) in both
        np.testing.assert_allclose(exact[j], ref, atol=1e-8)
        assert np.abs(ref).max() > 0.05


def test_selection_and_memory_friendly_large_layer():
    rng = np.random.default_rng(0)
    inp = SpikeTrains.from_arrays(np.sort(rng.uniform(0, 0.1, (1, 784, 1)), axis=2))
    net = Network(784, [Dense(50, 0.13, 0.2, n_max=30)], seed=0)
    net.forward(inp, 0.2)
    t = np.linspace(0, 0.2, 5000)
    full = net.membrane(t)
    some = net.membrane(t, neurons=[3, 7])
    assert full.shape == (50, 5000)
    np.testing.assert_allclose(some, full[[3, 7]], rtol=0, atol=1e-12)
