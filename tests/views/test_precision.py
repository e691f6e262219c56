"""PrecisionView: exact vs clock-based spikes and the error-vs-dt curve."""

import numpy as np
import panel as pn
from batscope.widgets.precision import PrecisionView


def test_empty_state_renders(render):
    view = PrecisionView()
    view.__panel__().get_root()
    for p in (view.spike_plot, view.error_plot, view.mismatch_plot):
        render(p)
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    assert "Compare" in view.summary.object


def test_compare_shows_error_growing_with_dt(render):
    view = PrecisionView(dt=1e-3, dt_min=1e-5, dt_max=1e-1, n_dt=5)
    view.param.trigger("compare")
    comps = view.comparisons
    assert len(comps) == 5
    errs = np.array([c.mean_abs_error for c in comps])
    assert errs[0] < 1e-4 and errs[-1] > 1e-3  # small at dt = 1e-5, large at 0.1
    assert errs[0] < errs[2] < errs[-1]
    assert comps[0].count_mismatch == 0
    assert view.at_dt is not None and view.at_dt.exact_spikes > 0
    exact, clock = view._exact_pipe.data, view._clock_pipe.data
    assert exact["t"].size == view.at_dt.exact_spikes and clock["t"].size == view.at_dt.clock_spikes
    curve = view._curve_pipe.data
    assert np.allclose(curve["dt"], np.logspace(-5, -1, 5)) and curve["chosen"] == 1e-3
    plot = render(view.error_plot)
    assert plot.state.x_scale.__class__.__name__ == "LogScale"
    assert "dt = 0.001" in view.summary.object
    view.reset()
    assert view.comparisons == [] and view._exact_pipe.data["t"].size == 0


def test_too_small_dt_is_refused():
    view = PrecisionView(dt_min=1e-7, dt=1e-7)
    view.view_config.sample_index = 1
    assert view.run_compare() is None
    assert "Cannot compare" in view.summary.object and "dt" in view.summary.object
