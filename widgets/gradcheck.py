"""Gradient check view: exact BATS gradients beside central finite differences
(docs/backward.md §8).

On *Run check*, a float64 copy of the session's network is run on the displayed sample(s) and, for
a few weights, ``engine.gradcheck`` compares ∂L/∂w from the backward pass with (L(w+ε) − L(w−ε))/2ε.
For a spike-count loss (a surrogate, docs/losses.md §2) the check uses a time-based linear probe and
says so; the surrogate values are listed beside it.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd
import panel as pn
import param
from batscope.engine.gradcheck import GradCheckResult, gradcheck
from batscope.widgets.base import PlotView
from batscope.widgets.live import add_hover, bokeh_pane, feed
from batscope.widgets.provider import SessionInputs
from bokeh.models import ColumnDataSource, Legend, LegendItem

COLUMNS = [
    "layer",
    "post",
    "pre",
    "weight",
    "exact",
    "finite diff.",
    "|exact − FD|",
    "scaled error",
    "surrogate",
    "skipped",
]
STATUS_COLORS = {"agrees": "#2ca02c", "differs": "#d62728"}


def _points(exact, fd) -> dict:
    return {"exact": np.asarray(exact, dtype=float), "fd": np.asarray(fd, dtype=float)}


def _diagonal(exact, fd) -> dict:
    """The line fd = exact across the points (a little beyond them)."""
    v = np.concatenate([np.asarray(exact, float), np.asarray(fd, float)])
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (-1.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    return {"x": [lo - pad, hi + pad], "y": [lo - pad, hi + pad]}


def result_frame(res: GradCheckResult) -> pd.DataFrame:
    """One row per checked weight (layer 1 = first trainable layer)."""
    rows = [
        [
            c.layer + 1,
            c.post,
            c.pre,
            c.weight,
            c.exact,
            c.fd,
            c.abs_error,
            c.scaled_error,
            c.surrogate,
            c.skipped,
        ]
        for c in res.checks
    ]
    df = pd.DataFrame(rows, columns=COLUMNS)
    if res.loss_exact:
        df = df.drop(columns="surrogate")
    return df


def summary(res: GradCheckResult) -> str:
    n, k = len(res.checks), len(res.compared)
    skipped = n - k
    verdict = "**Agree**" if res.passed else "**Disagree**" if k else "**Nothing compared**"
    text = f"{verdict}: {k} of {n} weights compared"
    if k:
        text += (
            f", largest |exact − FD| / max(1, |exact|) = {res.max_scaled_error:.2e} "
            f"(tolerance {res.tol:g}, ε = {res.eps:g}, float64)"
        )
    if skipped:
        text += (
            f"; {skipped} skipped because the perturbation changed a spike count or the "
            "loss is infinite (the loss is only piecewise smooth)"
        )
    text += "."
    if k and not any(c.exact != 0 for c in res.compared):
        text += (
            " Every compared gradient is 0: the output is silent or the chosen weights do "
            "not reach a spike (dead neurons), so this check says little."
        )
    text += f"\n\nChecked function: {res.label}."
    if not res.loss_exact:
        text += (
            "\n\nThe *surrogate* column is the gradient the trainer actually uses for the "
            "spike-count loss (∂n/∂t := −1): it is not a derivative of the loss and cannot be "
            "checked by finite differences."
        )
    return text


class GradCheckView(PlotView):
    """Exact-vs-finite-difference gradient table and scatter for the current network and loss.

    ``network_provider() -> Network | None`` and ``training_provider() -> dict | None`` come from
    the session (see :class:`~batscope.widgets.provider.SessionInputs`); ``reserve(batch)``
    reserves the memory of a check on ``batch`` samples (e.g.
    ``TrainingController.reserve_check``) or raises ``ValueError`` saying why it does not fit;
    the reservation is released when the check ends, however it ends.
    """

    check = param.Event(label="Run gradient check")
    n_weights = param.Integer(8, bounds=(1, 64), label="weights to check", doc="Weights to check")
    n_samples = param.Integer(
        1, bounds=(1, 32), label="samples", doc="Samples in the batch (from the displayed one)"
    )
    eps = param.Number(1e-7, bounds=(1e-10, 1e-3), label="step ε", doc="Finite-difference step ε")
    seed = param.Integer(
        0, bounds=(0, None), label="seed", doc="Seed of the weight choice (and probe)"
    )
    function = param.Selector(
        default="loss",
        objects=["loss", "linear probe"],
        label="checked function",
        doc="Check the loss itself (spike-count losses always use the probe) or the linear "
        "probe L = Σ r·t",
    )

    def __init__(
        self,
        view_config=None,
        network_provider=None,
        training_provider=None,
        reserve=None,
        **params,
    ):
        super().__init__(view_config=view_config, **params)
        self.inputs = SessionInputs(network_provider, training_provider)
        self._reserve = reserve
        self.result: GradCheckResult | None = None
        self.plot = self._figure()
        self.table = pn.pane.DataFrame(
            pd.DataFrame(columns=COLUMNS),
            index=False,
            float_format="{:.6g}".format,
            sizing_mode="stretch_width",
        )
        self.summary = pn.pane.Markdown(
            "Press **Run gradient check**.", css_classes=["gradcheck-summary"]
        )
        widgets = pn.Param(
            self.param,
            parameters=["function", "n_weights", "n_samples", "eps", "seed"],
            widgets={"eps": {"type": pn.widgets.FloatInput, "step": 1e-8}},
            show_name=False,
            sort=False,
            width=250,
        )
        button = pn.widgets.Button.from_param(self.param.check, color="primary")
        self._layout = pn.Column(
            pn.pane.Markdown("### Gradient check: exact vs finite differences"),
            pn.Row(
                pn.Column(widgets, button, width=260),
                bokeh_pane(self.plot),
                self.summary,
            ),
            self.table,
        )

    def __panel__(self):
        return self._layout

    def _figure(self):
        """Each compared weight at (exact, finite difference), green where they agree within
        the tolerance and red where not; on the dashed diagonal they are equal."""
        fig = self.figure(
            "Exact gradient vs finite difference",
            "exact ∂L/∂w (backward pass)",
            "central finite difference",
            380,
        )
        self.diagonal_source = ColumnDataSource(_diagonal([], []))
        fig.line(
            "x", "y", source=self.diagonal_source, color="grey", line_dash="dashed", line_width=1
        )
        self.point_sources = {k: ColumnDataSource(_points([], [])) for k in STATUS_COLORS}
        marks = {
            k: fig.scatter("exact", "fd", source=src, color=STATUS_COLORS[k], size=9)
            for k, src in self.point_sources.items()
        }
        items = [LegendItem(label=k, renderers=[r]) for k, r in marks.items()]
        fig.add_layout(Legend(items=items), "right")
        add_hover(fig, list(marks.values()), [("exact", "@exact"), ("finite diff.", "@fd")])
        return fig

    def _show(self, exact, fd, agrees) -> None:
        exact, fd, agrees = (np.asarray(a) for a in (exact, fd, agrees))
        feed(self.point_sources["agrees"], _points(exact[agrees], fd[agrees]))
        feed(self.point_sources["differs"], _points(exact[~agrees], fd[~agrees]))
        feed(self.diagonal_source, _diagonal(exact, fd))

    @param.depends("check", watch=True)
    def run_check(self) -> GradCheckResult | None:
        """Run the check on the displayed sample(s); the result also goes to the table/plot."""
        try:
            with self._reserve(self.n_samples) if self._reserve else nullcontext():
                training = self.inputs.training()
                net = self.inputs.network()
                x, labels = self.inputs.samples(
                    self.view_config.sample_index, self.n_samples, training
                )
                res = gradcheck(
                    net,
                    x,
                    self.inputs.t_max(training),
                    self.inputs.loss(training),
                    labels,
                    n_weights=self.n_weights,
                    eps=self.eps,
                    seed=self.seed,
                    probe=self.function == "linear probe",
                )
        except (ValueError, TypeError, FileNotFoundError) as exc:
            self.summary.object = f"**Cannot run the check:** {exc}"
            return None
        self.result = res
        self._show(
            [c.exact for c in res.compared],
            [c.fd for c in res.compared],
            np.array([c.scaled_error <= res.tol for c in res.compared], dtype=bool),
        )
        self.table.object = result_frame(res)
        self.summary.object = summary(res)
        return res

    def update(self, batch: list) -> None:
        """Nothing streams here: the check runs on demand."""

    def reset(self) -> None:
        self.result = None
        self._show([], [], np.zeros(0, dtype=bool))
        self.table.object = pd.DataFrame(columns=COLUMNS)
        self.summary.object = "Press **Run gradient check**."
