"""PrecisionView: exact vs clock-based spikes and the error-vs-dt curve."""

import numpy as np
import panel as pn
from batscope.widgets.precision import OFFSET, PrecisionView
from bokeh.document import Document
from bokeh.models import LogScale


def test_empty_state_renders():
    view = PrecisionView()
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    doc.to_json()  # serializes as a served page would
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    assert "Compare" in view.summary.object
    assert not view.chosen.visible and len(view.curve_source.data["dt"]) == 0


def test_compare_shows_error_growing_with_dt():
    view = PrecisionView(dt=1e-3, dt_min=1e-5, dt_max=1e-1, n_dt=5)
    view.param.trigger("compare")
    comps = view.comparisons
    assert len(comps) == 5
    errs = np.array([c.mean_abs_error for c in comps])
    assert errs[0] < 1e-4 and errs[-1] > 1e-3  # small at dt = 1e-5, large at 0.1
    assert errs[0] < errs[2] < errs[-1]
    assert comps[0].count_mismatch == 0
    assert view.at_dt is not None and view.at_dt.exact_spikes > 0
    exact, clock = view.exact_source.data, view.clock_source.data
    assert len(exact["t"]) == view.at_dt.exact_spikes and len(clock["t"]) == view.at_dt.clock_spikes
    # exact spikes drawn just above their neuron's row, clock spikes just below
    assert np.allclose(np.asarray(exact["neuron"]) % 1, OFFSET)
    assert np.allclose(np.asarray(clock["neuron"]) % 1, 1 - OFFSET)
    curve = view.curve_source.data
    dts = np.logspace(-5, -1, 5)
    ok = [c.max_abs_error > 0 for c in comps]
    assert np.allclose(curve["dt"], dts[ok])
    assert np.allclose(curve["mean"], errs[ok])
    assert np.allclose(view.mismatch_source.data["dt"], dts)
    assert view.chosen.visible and view.chosen.location == 1e-3
    assert isinstance(view.error_fig.x_scale, LogScale)
    assert isinstance(view.error_fig.y_scale, LogScale)
    # the log axes hold every point
    x, y = view.error_fig.x_range, view.error_fig.y_range
    assert x.start <= dts.min() and x.end >= dts.max()
    assert y.start <= np.min(curve["mean"]) and y.end >= np.max(curve["max"])
    assert "dt = 0.001" in view.summary.object
    view.reset()
    assert view.comparisons == [] and len(view.exact_source.data["t"]) == 0
    assert not view.chosen.visible


def test_too_small_dt_is_refused():
    view = PrecisionView(dt_min=1e-7, dt=1e-7)
    view.view_config.sample_index = 1
    assert view.run_compare() is None
    assert "Cannot compare" in view.summary.object and "dt" in view.summary.object
