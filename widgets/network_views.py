"""The app's raster, membrane, error-flow and latency views of any Network, outside the app: in a
Jupyter notebook (after ``pn.extension()``) or a script.

The views are the app's own (``RasterView``, ``MembraneView``, ``ErrorFlowView``, ``LatencyView``)
fed with the same Snapshot a training run sends them, built by
``training.network_snapshot``. A click on a raster neuron, or a new ``view_config`` value (sample,
layer, neurons), computes the snapshot again, as the app does for a paused run::

    import panel as pn
    from batscope.widgets.network_views import NetworkViews

    pn.extension()
    views = NetworkViews(net, inputs, labels, loss, t_max=0.2, sample_index=3)
    views                      # all four in tabs; or views.raster, views.membrane, ...
"""

from __future__ import annotations

import numpy as np
import panel as pn
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains
from batscope.training.network_snapshot import (
    checked_labels,
    decoding_mode,
    last_input_time,
    population_statistics,
    sample_snapshot,
)
from batscope.training.state import ViewConfig

from .errorflow import ErrorFlowView
from .latency import LatencyView
from .locked_events import install as install_locked_events
from .membrane import MembraneView
from .raster import RasterView


class NetworkViews(pn.viewable.Viewer):
    """Raster, membrane trace, α·β error flow and latency of ``network`` on ``inputs``.

    ``inputs`` (SpikeTrains ``[B, N_in, K]``) and ``labels`` (``B`` class indices) are the samples
    shown; the latency curve is measured over all of them (one forward pass: pass a few hundred,
    not a whole data set). ``loss`` gives the errors of the error flow and the predictions.
    ``t_enc`` marks the end of the encoding window on the latency plot (default: the inputs' last
    spike). ``sample_index``, ``layer`` and ``neurons`` start ``view_config``.
    """

    def __init__(
        self,
        network: Network,
        inputs: SpikeTrains,
        labels,
        loss,
        t_max: float,
        t_enc: float | None = None,
        sample_index: int = 0,
        layer: int = 1,
        neurons=(0,),
        predict_mode: str = "reference",
    ):
        super().__init__()
        install_locked_events()  # served from a script, its clicks change raw Bokeh models
        if not isinstance(network, Network):
            raise TypeError(f"network must be a batscope Network, got {type(network).__name__}")
        if not isinstance(inputs, SpikeTrains):
            raise TypeError(f"inputs must be SpikeTrains, got {type(inputs).__name__}")
        if not (np.isfinite(t_max) and t_max > 0):
            raise ValueError(f"t_max must be a finite time > 0 s, got {t_max}")
        self.network, self.inputs, self.loss = network, inputs, loss
        self.labels = checked_labels(inputs, labels)
        self.t_max, self.predict_mode = float(t_max), predict_mode
        self.t_enc = last_input_time(inputs, t_max) if t_enc is None else float(t_enc)
        self.view_config = ViewConfig(layer=int(layer), neurons=[int(n) for n in neurons])
        # a sample outside the inputs is refused by the parameter itself, naming its bounds
        self.view_config.param.sample_index.bounds = (0, inputs.batch_size - 1)
        self.view_config.sample_index = sample_index
        self.raster = RasterView(self.view_config)
        self.membrane = MembraneView(self.view_config)
        self.error_flow = ErrorFlowView(self.view_config)
        self.latency = LatencyView(self.view_config)
        sparsity, latency = population_statistics(
            network,
            inputs,
            self.labels,
            self.t_max,
            self.t_enc,
            decoding_mode(loss),
            predict_mode,
        )
        self._population = {"sparsity": sparsity, "latency": latency}
        self.snapshot = None
        self.refresh()
        self.view_config.param.watch(self.refresh, ["sample_index", "layer", "neurons"])

    @property
    def views(self) -> tuple:
        """The four views, in the order of the tabs."""
        return self.raster, self.membrane, self.error_flow, self.latency

    def refresh(self, *_) -> None:
        """Compute the snapshot of the chosen sample, layer and neurons and draw every view."""
        vc = self.view_config
        self.snapshot = sample_snapshot(
            self.network,
            self.inputs,
            self.labels,
            self.loss,
            self.t_max,
            vc.sample_index,
            vc.layer,
            vc.neurons,
            self.predict_mode,
            status="finished",
            extra={"t_enc": self.t_enc},
            **self._population,
        )
        for view in self.views:
            view.update([self.snapshot])

    def __panel__(self):
        names = ("Raster", "Membrane", "Error flow", "Latency")
        return pn.Tabs(*zip(names, self.views, strict=True), dynamic=False)
