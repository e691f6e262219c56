"""The batched Fig. 3 convergence sweep (docs/training.md §4)."""

import numpy as np
import pytest
from batscope.engine.convergence import (
    LABELS,
    PATTERNS,
    SweepConfig,
    initial_weights,
    run_single,
    run_sweep,
)

SMALL = dict(means=(0.2, 0.8, 1.4, 2.0), stds=(0.0, 0.8), repeats=4, epochs=20)


def test_inputs_match_the_datasets_toy_task():
    toy = pytest.importorskip("batscope.datasets.toy").toy_task("convergence")
    np.testing.assert_array_equal(toy.inputs.times[:, :, 0], PATTERNS)
    np.testing.assert_array_equal(toy.labels, LABELS)


def test_initial_weights_seeded_per_run():
    cfg = SweepConfig(seed=3)
    w = initial_weights(cfg, 7, 0, range(3))
    assert w.shape == (3, 2, 4) and (w == cfg.means[7]).all()  # σ = 0: every weight is μ
    a = initial_weights(cfg, 2, 5, [0, 1, 2])
    np.testing.assert_array_equal(a[1:], initial_weights(cfg, 2, 5, [1, 2]))  # order-free
    assert not np.array_equal(a, initial_weights(SweepConfig(seed=4), 2, 5, [0, 1, 2]))
    assert not np.array_equal(a, initial_weights(cfg, 2, 6, [0, 1, 2]))


def test_sweep_is_identical_across_chunkings_and_reports_progress():
    cfg = SweepConfig(**SMALL)
    whole = run_sweep(cfg)
    assert whole.complete and whole.runs_done == 8 * 4
    seen = []
    chunked = run_sweep(cfg, chunk_cells=3, callback=lambda c, a: seen.append((c, a)))
    np.testing.assert_array_equal(chunked.best, whole.best)
    np.testing.assert_array_equal(chunked.first_full, whole.first_full)
    np.testing.assert_array_equal(chunked.accuracy, whole.accuracy)
    cells = np.concatenate([c for c, _ in seen])
    assert len(seen) == 3 and sorted(map(tuple, cells)) == [
        (s, m) for s in range(2) for m in range(4)
    ]
    for c, a in seen:
        np.testing.assert_array_equal(a, whole.accuracy[c[:, 0], c[:, 1]])
    assert set(np.unique(whole.best)) <= {0.0, 0.5, 1.0}
    np.testing.assert_array_equal(whole.accuracy, whole.best.mean(axis=2))


def test_should_stop_leaves_remaining_cells_nan():
    calls = []
    res = run_sweep(
        SweepConfig(**SMALL),
        chunk_cells=2,
        callback=lambda c, a: calls.append(1),
        should_stop=lambda: len(calls) >= 1,
    )
    assert not res.complete and res.done.sum() == 2 and res.runs_done == 8
    assert np.isnan(res.accuracy).sum() == 6


def test_equal_weights_1_4_multi_spike_converges():
    for mode in ("reference", "strict"):
        cfg = SweepConfig(means=(1.4,), stds=(0.0,), repeats=2, tie_mode=mode)
        res = run_sweep(cfg)
        assert res.accuracy[0, 0] == 1.0
        assert (res.first_full >= 0).all()


def test_silence_scores_the_chance_floor_only_in_reference_mode():
    # μ = 0, σ = 0: no output spikes at all, so nothing trains
    ref = run_sweep(SweepConfig(means=(0.0,), stds=(0.0,), repeats=2, epochs=3))
    strict = run_sweep(
        SweepConfig(means=(0.0,), stds=(0.0,), repeats=2, epochs=3, tie_mode="strict")
    )
    assert ref.accuracy[0, 0] == 0.5 and strict.accuracy[0, 0] == 0.0


def test_run_single_matches_the_sweep():
    cfg = SweepConfig(**{**SMALL, "variant": "single"})
    res = run_sweep(cfg, chunk_cells=5)
    for s, m, r in [(1, 1, 2), (0, 2, 0), (1, 3, 3)]:
        tr = run_single(cfg.means[m], cfg.stds[s], r, cfg)
        assert tr.best == res.best[s, m, r]
        full = np.flatnonzero(tr.accuracy == 1.0)
        assert (full[0] if full.size else -1) == res.first_full[s, m, r]
        assert tr.weights.shape == (cfg.epochs + 1, 2, 4) and tr.times.shape == (
            cfg.epochs,
            2,
            2,
            1,
        )
        np.testing.assert_array_equal(tr.weights[0], initial_weights(cfg, m, s, [r])[0])
    with pytest.raises(ValueError, match="mean"):
        run_single(0.5, 0.0, 0, cfg)
    with pytest.raises(ValueError, match="repeat"):
        run_single(0.8, 0.0, 4, cfg)


def test_single_spike_converges_in_a_smaller_region_than_multi_spike():
    grid = dict(means=(0.2, 0.8, 1.4, 2.0, 2.4), stds=(0.0, 1.0), repeats=6, epochs=50)
    multi = run_sweep(SweepConfig(**grid, variant="multi"))
    single = run_sweep(SweepConfig(**grid, variant="single"))
    # σ = 0 row: multi-spike learns every weight level that fires; single-spike only a band
    np.testing.assert_array_equal(multi.accuracy[0], [0.5, 1, 1, 1, 1])
    assert single.accuracy[0, 1] == 1.0 and (single.accuracy[0, 2:] == 0.5).all()
    assert (multi.accuracy >= 0.9).sum() > (single.accuracy >= 0.9).sum()
    assert multi.accuracy.mean() > single.accuracy.mean() + 0.15


def test_csv_and_config_round_trip(tmp_path):
    cfg = SweepConfig(means=(0.0, 1.4), stds=(0.0,), repeats=1, epochs=2)
    res = run_sweep(cfg)
    res.to_csv(tmp_path / "fig3.csv")
    lines = (tmp_path / "fig3.csv").read_text().splitlines()
    assert lines[0] == "Mean,Std,Accuracy" and lines[-1] == "" and len(lines) == 4
    assert SweepConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(variant="dual"), "variant"),
        (dict(tie_mode="loose"), "tie_mode"),
        (dict(repeats=0), "repeats"),
        (dict(stds=(-0.2,)), "stds"),
        (dict(means=()), "means"),
        (dict(lr=0.0), "lr"),
        (dict(dtype="float16"), "dtype"),
        (dict(backend="tpu"), "backend"),
    ],
)
def test_config_validation(kw, word):
    with pytest.raises(ValueError, match=word):
        SweepConfig(**kw)
