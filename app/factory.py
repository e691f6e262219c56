"""``create_app()``: one fresh app per browser session (app-architecture.md §3).

Everything with Bokeh models — template, widgets, streams, views — is built here, per session;
modules hold only data and compiled kernels.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import panel as pn
import param
from batscope.training.controller import TrainingController
from batscope.training.grid_sweep import GridSweepController
from batscope.training.lesson_progress import LessonProgress
from batscope.training.limits import escape
from batscope.training.resources import SessionAccount
from batscope.training.serversettings import (
    event_data_refusal,
    full_data_refusal,
    runs_dir,
    server_trainer,
)
from batscope.training.state import (
    EVENT_TASKS,
    IMAGE_TASKS,
    TASKS,
    NetworkSpec,
    SweepConfig,
    TrainingConfig,
    ViewConfig,
    check_config,
    layer_notation,
    task_shape,
)
from batscope.training.sweep import SweepController
from batscope.training.sweep_remote import ClusterChoice
from batscope.widgets.base import error_alert, show_visible
from batscope.widgets.builder import NetworkBuilder
from batscope.widgets.code import CodeView
from batscope.widgets.controls import ControlsView
from batscope.widgets.convergence import ConvergenceView
from batscope.widgets.editor import PatternEditorView
from batscope.widgets.errorflow import ErrorFlowView
from batscope.widgets.export import ExportView
from batscope.widgets.gradcheck import GradCheckView
from batscope.widgets.grid_sweep import GridSweepView
from batscope.widgets.latency import LatencyView
from batscope.widgets.live import LiveText
from batscope.widgets.locked_events import install as install_locked_events
from batscope.widgets.membrane import MembraneView
from batscope.widgets.metrics import MetricsView
from batscope.widgets.precision import PrecisionView
from batscope.widgets.predictions import PredictionMapView
from batscope.widgets.raster import MAX_SELECTED, RasterView
from batscope.widgets.runs import RunPicker
from batscope.widgets.sparsity import SparsityView
from batscope.widgets.weights import WeightsView

from .bokeh_references import install as install_faster_walk
from .bokeh_serialization import install as install_faster_serialization
from .lesson_driver import LessonDriver
from .presets import DEFAULT, apply_preset, list_presets, load_preset
from .session import PERIOD_MS, LiveSession, ViewGate
from .urlstate import UrlState

CSS = Path(__file__).with_name("static") / "batscope.css"
TRAINING_GROUPS = {
    "Task": ("task", "data", "t_max", "t_enc", "n_train", "val_fraction"),
    "Loss": ("loss", "y_true", "y_false", "tau_l", "predict"),
    "Optimiser": ("optimizer", "lr", "lr_decay", "lr_every", "lr_floor", "batch_size", "epochs"),
    "Run": ("seed", "backend", "dtype"),
}
LABELS = {
    "data": "data (sample / full set)",
    "t_max": "T_sim [s]",
    "t_enc": "T_enc [s]",
    "n_train": "training samples",
    "val_fraction": "validation share",
    "y_true": "y_true (label target)",
    "y_false": "y_false (other targets)",
    "tau_l": "τ_L [s]",
    "predict": "ties / silence",
    "lr": "learning rate λ",
    "lr_decay": "decay factor γ",
    "lr_every": "decay every (epochs)",
    "lr_floor": "λ floor",
    "batch_size": "batch size",
}


def _fill_on_open(card, make_body, event) -> None:
    """Put a collapsed card's body (``make_body()``) in when it is first opened: its models,
    and the body itself where ``make_body`` builds it, cost nothing before."""
    if not event.new and not card.objects:
        card.objects = [make_body()]


def _lazy_card(title: str, make_body, header=None) -> pn.Card:
    """A collapsed card whose body ``make_body()`` is built when it is first opened; ``header``
    (a :class:`LiveText`) replaces the title where the title changes: a Card rebuilds its
    header pane, Markdown render included, at every change of its title (25-30 ms)."""
    card = pn.Card(
        title=title,
        header=header,
        collapsed=True,
        sizing_mode="stretch_width",
        margin=(5, 0),
    )
    card.param.watch(partial(_fill_on_open, card, make_body), "collapsed")
    return card


def _layer_fields(hidden) -> set[str]:
    """The LayerSpec fields among hidden controls: ``layer.theta`` → ``theta``."""
    return {h.split(".", 1)[1] for h in hidden if h.startswith("layer.")}


class TrainingForm(pn.viewable.Viewer):
    """The TrainingConfig as grouped, validated inputs; some fields show only where relevant."""

    def __init__(self, training: TrainingConfig, **params):
        super().__init__(**params)
        from batscope.widgets.base import error_alert, validated_input

        self.training = training
        self.hidden: set[str] = set()
        self.alert = error_alert()
        self.inputs = {
            name: validated_input(training, name, self.alert, LABELS.get(name, name))
            for names in TRAINING_GROUPS.values()
            for name in names
        }
        for w in self.inputs.values():
            w.sizing_mode = "stretch_width"
        if event_data_refusal("shd"):  # offered with a note; the check alert says why
            self.inputs["task"].options = {
                (f"{t} (files not found)" if t == "shd" else t): t for t in TASKS
            }
        # each group's grid holds its visible inputs only (see show_visible)
        self._grids = {
            group: pn.GridBox(ncols=2, sizing_mode="stretch_width") for group in TRAINING_GROUPS
        }
        training.param.watch(lambda *_: self._relevance(), ["loss", "task"])
        training.param.watch(self._full_data_here, ["data", "task"])
        self._relevance()
        self._cards = {}
        for group, grid in self._grids.items():
            card = pn.Card(
                title=group,
                collapsed=group != "Optimiser",
                sizing_mode="stretch_width",
                margin=(3, 0),
            )
            if card.collapsed:  # its inputs are drawn when it is first opened
                card.param.watch(partial(_fill_on_open, card, lambda g=grid: g), "collapsed")
            else:
                card.objects = [grid]
            self._cards[group] = card
        self._layout = pn.Column(*self._cards.values(), self.alert, sizing_mode="stretch_width")

    def _relevance(self):
        t = self.training
        relevant = {
            "y_true": t.loss == "spike_count",
            "y_false": t.loss == "spike_count",
            "tau_l": t.loss == "ttfs_ce",
            "t_enc": t.task in IMAGE_TASKS,
            "data": t.task in IMAGE_TASKS,
            "n_train": t.task in IMAGE_TASKS or t.task == "shd",  # Yin-Yang: its fixed splits
            "val_fraction": t.task in IMAGE_TASKS or t.task == "shd",
            "batch_size": t.task in IMAGE_TASKS + EVENT_TASKS,
        }
        for name, w in self.inputs.items():
            w.visible = relevant.get(name, True) and name not in self.hidden
        for group, names in TRAINING_GROUPS.items():
            show_visible(self._grids[group], [self.inputs[n] for n in names])

    def _full_data_here(self, *_):
        """The full dataset is used only where its files are (or may be downloaded): otherwise
        the choice goes back to the sample and the alert says why (URL and configs too)."""
        t = self.training
        why = full_data_refusal(t.task) if t.data == "full" and t.task in IMAGE_TASKS else ""
        if why:
            t.data = "sample"
            self.alert.object = f"**data**: {escape(why, 600)}"
            self.alert.visible = True

    def open_groups(self, names) -> None:
        """Open the cards of the groups that hold the fields ``names``."""
        for group, fields in TRAINING_GROUPS.items():
            if set(fields) & set(names):
                self._cards[group].collapsed = False

    def set_hidden(self, hidden, locked: bool) -> None:
        self.hidden = {h for h in hidden if not h.startswith("layer.")}
        self.inputs["task"].disabled = locked
        self._relevance()

    def __panel__(self):
        return self._layout


def _neurons_text(neurons) -> str:
    return ", ".join(str(int(n)) for n in neurons)


def _parse_neurons(text: str) -> list[int] | None:
    """Sorted distinct indices from ``"5, 1"``, or None when the text is not integers."""
    try:
        return sorted({int(s) for s in text.replace(" ", "").split(",") if s})
    except ValueError:
        return None


class ViewControls(pn.viewable.Viewer):
    """Which sample, layer and membrane-trace neurons the live views show."""

    def __init__(self, view: ViewConfig, network: NetworkSpec, **params):
        super().__init__(**params)
        self.view, self.network = view, network
        self.sample = pn.widgets.IntInput.from_param(
            view.param.sample_index, label="sample", start=0, width=100
        )
        self.layer = pn.widgets.IntInput.from_param(
            view.param.layer, label="layer (0 = input)", start=0, end=len(network.layers), width=130
        )
        self.neurons = pn.widgets.TextInput(
            label="membrane neurons",
            value=_neurons_text(view.neurons),
            width=160,
            description=f"Comma-separated indices, e.g. 0, 1, 5 (at most {MAX_SELECTED}); "
            "a click on the raster picks one",
            css_classes=["input-neurons"],
        )
        self.alert = error_alert()
        self._reverting = False
        self.neurons.param.watch(self._set_neurons, "value")
        view.param.watch(self._follow_neurons, "neurons")
        network.param.watch(lambda *_: setattr(self.layer, "end", len(network.layers)), "layers")
        self._layout = pn.Column(pn.Row(self.sample, self.layer, self.neurons), self.alert)

    def _set_neurons(self, event):
        """Apply a typed selection, or refuse it with a message and show the current one."""
        if self._reverting:
            return
        idx = _parse_neurons(event.new)
        if not idx or min(idx) < 0 or len(idx) > MAX_SELECTED:
            self.alert.object = (
                f"**membrane neurons**: {escape(repr(event.new))} is not a list of 1 to "
                f"{MAX_SELECTED} neuron indices ≥ 0, e.g. 0, 1, 5"
            )
            self.alert.visible = True
            self._reverting = True
            try:
                self.neurons.value = _neurons_text(self.view.neurons)
            finally:
                self._reverting = False
            return
        self.alert.visible = False
        self.view.neurons = idx

    def _follow_neurons(self, event):
        """A click on the raster (or a preset) changed the selection: show it."""
        if sorted(set(event.new)) != _parse_neurons(self.neurons.value):
            self.neurons.value = _neurons_text(event.new)

    def __panel__(self):
        return self._layout


TABS = {  # each tab's title and the views it shows, built when the tab is first shown
    "Activity": ("raster", "membrane"),
    "Learning": ("metrics", "predictions", "errorflow", "weights"),
    "Convergence": ("convergence",),
    "Sweeps": ("sweeps",),
    "Sparsity & latency": ("sparsity", "latency"),
    "Toy editor": ("editor",),
    "Gradient check": ("gradcheck",),
    "Precision": ("precision",),
    "Code & export": ("code", "export"),
}
TRAINING_VIEWS = (
    "raster",
    "membrane",
    "metrics",
    "predictions",
    "errorflow",
    "weights",
    "sparsity",
    "latency",
)
TAB_OF = {name: i for i, names in enumerate(TABS.values()) for name in names}


class BatscopeApp(pn.viewable.Viewer):
    """The whole app for one session: state, controllers, views, pull loop and template.

    Opening a session builds the sidebar and the visible tab only: a tab's views are built the
    first time it is shown (:meth:`view`), and the live ones are fed through a :class:`ViewGate`
    that holds their updates until then.
    """

    preset = param.Selector(default=DEFAULT, objects=list_presets())

    def __init__(self, trainer_factory=server_trainer, period_ms: int = PERIOD_MS, **params):
        super().__init__(**params)
        self.network = NetworkSpec()
        self.training = TrainingConfig()
        self.view_config = ViewConfig()
        self.urlstate = UrlState(self.network, self.training)
        # the preset's setup before any widget exists: the builder's cards are built once
        apply_preset(load_preset(self.preset), self.network, self.training)
        self.account = SessionAccount()  # the session's share of the memory budget
        self.controller = TrainingController(
            self.network, self.training, self.view_config, trainer_factory, account=self.account
        )
        # sweeps may run on the server's Dask cluster (BATSCOPE_DASK_SCHEDULER), if it has one
        self.cluster = ClusterChoice()
        self.sweep = SweepController(SweepConfig(), account=self.account, cluster=self.cluster)
        self.grid_sweep = GridSweepController(
            self.network, self.training, account=self.account, cluster=self.cluster
        )
        vc = self.view_config
        providers = {
            "network_provider": self.controller.current_network,
            "training_provider": self.training.to_dict,
        }
        self._makers = {
            "raster": partial(RasterView, vc),
            "membrane": partial(MembraneView, vc),
            "metrics": partial(MetricsView, vc),
            "predictions": partial(PredictionMapView, vc),
            "errorflow": partial(ErrorFlowView, vc),
            "weights": partial(WeightsView, vc),
            "sparsity": partial(SparsityView, vc),
            "latency": partial(LatencyView, vc),
            "convergence": partial(ConvergenceView, self.sweep, vc),
            "sweeps": partial(GridSweepView, self.grid_sweep, vc),
            "editor": partial(PatternEditorView, vc, **providers),
            "gradcheck": partial(
                GradCheckView, vc, reserve=self.controller.reserve_check, **providers
            ),
            "precision": partial(PrecisionView, vc, **providers),
            "code": partial(CodeView, self.network, self.training, view_config=vc),
            "export": partial(ExportView, self.controller, vc),
        }
        self.views: dict = {}  # the views built so far, by name
        self.controls = ControlsView(self.controller)
        # the Network and Training cards open collapsed: their inputs (a third of a session's
        # opening) are built when first wanted, with the controls the preset hides
        self._builder: NetworkBuilder | None = None
        self._form: TrainingForm | None = None
        self._hidden: tuple[set, bool] = (set(), False)
        self.progress = LessonProgress()  # the participant's place in a lesson (docs/lessons.md)
        self.lesson = LessonDriver(self, list(TABS))
        self.gates = {
            name: ViewGate(partial(self.view, name), partial(self._shown, TAB_OF[name]))
            for name in (*TRAINING_VIEWS, "convergence", "sweeps")
        }
        self.session = LiveSession(
            [
                (
                    self.controller,
                    [*(self.gates[n] for n in TRAINING_VIEWS), self.lesson.run_record],
                ),
                (self.sweep, [self.gates["convergence"], self.lesson.sweep_record]),
                (self.grid_sweep, [self.gates["sweeps"]]),
            ],
            period_ms=period_ms,
        )
        self.check = pn.pane.Alert(
            "", alert_type="warning", visible=False, css_classes=["config-check"]
        )
        self.network.param.watch(lambda *_: self._check(), "revision")
        self.training.param.watch(lambda *_: self._check(), list(TrainingConfig.FIELDS))
        self.preset_info = pn.pane.Markdown(
            sizing_mode="stretch_width", css_classes=["preset-info"]
        )
        self.urlstate._applied = self.preset
        self.urlstate.preset = self.preset
        self.urlstate.param.watch(self._on_url_preset, "preset")
        self._show_preset(self.preset)
        self.template = self._template()

    @property
    def builder(self) -> NetworkBuilder:
        """The Network card's layer editor, built on first use."""
        if self._builder is None:
            hidden, locked = self._hidden
            self._builder = NetworkBuilder(
                self.network,
                self.training,
                account=self.account,
                hidden=_layer_fields(hidden),
                locked=locked,
            )
        return self._builder

    @property
    def form(self) -> TrainingForm:
        """The Training card's inputs, built on first use."""
        if self._form is None:
            self._form = TrainingForm(self.training)
            self._form.set_hidden(*self._hidden)
        return self._form

    def set_hidden(self, hidden, locked: bool) -> None:
        """Hide the controls named in ``hidden`` (``lr``, ``layer.theta``, …) in the Training
        and Network cards; ``locked`` freezes the task and the network's structure."""
        self._hidden = (set(hidden), locked)
        if self._form is not None:
            self._form.set_hidden(hidden, locked)
        if self._builder is not None:
            self._builder.set_hidden(_layer_fields(hidden), locked)

    def open_cards(self, controls) -> None:
        """Open the cards that hold ``controls`` (a lesson step's fields: ``lr``,
        ``layer.n_max``, …), so that what a step asks to change is in sight."""
        if getattr(self, "_network_card", None) is None:  # before the layout: opens collapsed
            return
        if any(c.startswith("layer.") for c in controls):
            self._network_card.collapsed = False
        fields = [c for c in controls if not c.startswith("layer.")]
        if fields:
            self._training_card.collapsed = False
            self.form.open_groups(fields)

    def view(self, name: str):
        """The view ``name`` (a key of :data:`TAB_OF`), built on first use."""
        if name not in self.views:
            self.views[name] = self._makers[name]()
            self.lesson.attach_view(name, self.views[name])
        return self.views[name]

    # -- presets and checks ----------------------------------------------------------------
    @param.depends("preset", watch=True)
    def _preset_selected(self):
        self.urlstate.preset = self.preset  # applies it and writes it to the URL

    def _on_url_preset(self, event):
        if event.new in self.param.preset.objects:
            self.preset = event.new
            self._show_preset(event.new)

    def use_preset(self, name: str) -> None:
        """Apply preset ``name`` afresh, even when it is the one selected (a lesson step)."""
        if self.preset != name:
            self.preset = name
        else:
            self._apply_preset(name)

    def _apply_preset(self, name: str) -> None:
        apply_preset(load_preset(name), self.network, self.training)
        self.urlstate._applied = name
        self.urlstate.preset = name
        self._show_preset(name)

    def _show_preset(self, name: str) -> None:
        p = load_preset(name)
        self.preset_info.object = f"**{p.title}**\n\n{p.description}"
        self.set_hidden(p.hidden, p.locked)
        self._check()

    def _check(self) -> None:
        msgs = check_config(self.network, self.training)
        missing = event_data_refusal(self.training.task)  # SHD: in the data folder
        msgs += [escape(missing, 1000)] if missing else []
        self.check.object = "\n".join(f"- {m}" for m in msgs)
        self.check.visible = bool(msgs)

    # -- layout ----------------------------------------------------------------------------
    def _template(self):
        preset_select = pn.widgets.Select.from_param(
            self.param.preset,
            label="Preset",
            sizing_mode="stretch_width",
            options={load_preset(n).title: n for n in list_presets()},
        )
        url_message = pn.pane.Alert(
            self.urlstate.param.message,
            alert_type="danger",
            visible=self.urlstate.param.message.rx.bool(),
            css_classes=["url-message"],
        )
        self._network_title = LiveText("Network", css_classes=["card-title"], margin=(0, 0))
        self._training_title = LiveText("Training", css_classes=["card-title"], margin=(0, 0))
        self._network_card = _lazy_card("Network", lambda: self.builder, self._network_title)
        self._training_card = _lazy_card("Training", lambda: self.form, self._training_title)
        self._titles()
        self.network.param.watch(self._titles, "revision")
        self.training.param.watch(self._titles, ["task", "loss", "optimizer", "lr", "epochs"])
        sidebar = [
            url_message,
            self.lesson.bar,
            preset_select,
            self.preset_info,
            self.controls,
            self.check,
            self._network_card,
            self._training_card,
        ]
        if runs_dir() is not None:  # batscope serve --runs DIR; listed when first opened
            sidebar.append(_lazy_card("Open a run folder", self._run_picker))
        self.view_controls = ViewControls(self.view_config, self.network)
        self._tab_bodies = [pn.Column(sizing_mode="stretch_width") for _ in TABS]
        # not dynamic: a tab's views are built into its body once, when first shown, and stay
        # in the page; dynamic Tabs would drop them when another tab is shown and rebuild them
        # on return (0.1-0.4 s of the server's event loop per switch, for every participant)
        tabs = pn.Tabs(
            *zip(TABS, self._tab_bodies, strict=True),
            dynamic=False,
            sizing_mode="stretch_width",
            css_classes=["main-tabs"],
        )
        self._fill_tab(tabs.active)
        self.tabs = tabs
        tabs.param.watch(self._on_tab, "active")
        self.lesson.attach_tabs(tabs)  # after _on_tab: the tab's views exist when it is told
        template = pn.template.BootstrapTemplate(
            title="batscope: exact gradients through spikes",
            # one root for the whole sidebar: Bokeh re-walks every model of the document on
            # each root added, a cost paid per session
            sidebar=[pn.Column(*sidebar, sizing_mode="stretch_width")],
            main=[tabs],
            sidebar_width=400,
            # Panel's header spinner follows the busy state of the whole process: every event
            # of any participant would patch every open page (and spin it)
            busy_indicator=None,
        )
        if CSS.is_file():
            template.config.raw_css.append(CSS.read_text())
        return template

    def _run_picker(self) -> RunPicker:
        self.runs = RunPicker(self.controller, runs_dir())
        return self.runs

    def _titles(self, *_) -> None:
        """The collapsed cards' titles say what is inside: the network in the paper's
        notation, the task, loss and schedule."""
        t = self.training
        notation = layer_notation(self.network.layers, task_shape(t.task)[0])
        self._network_title.object = f"Network: {notation}"
        self._training_title.object = (
            f"Training: {t.task}, {t.loss}, {t.optimizer} λ={t.lr:g}, {t.epochs} epochs"
        )

    def _fill_tab(self, index: int) -> None:
        """Build the views of tab ``index`` into its (so far empty) body, once."""
        body = self._tab_bodies[index]
        if body.objects:
            return
        names = list(TABS.values())[index]
        extra = [self.view_controls] if index == 0 else []
        body.objects = [*extra, *(self.view(n) for n in names)]

    def _shown(self, index: int) -> bool:
        return getattr(self, "tabs", None) is not None and self.tabs.active == index

    def _on_tab(self, event) -> None:
        self._fill_tab(event.new)
        # after the tab's new models have gone out: data sent with them would be dropped
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(self._flush_shown)
        else:
            self._flush_shown()

    def _flush_shown(self) -> None:
        with pn.io.hold():
            for gate in self.gates.values():
                if gate._visible():
                    gate.flush()

    def sync_url(self, location) -> None:
        """Apply the URL's setup (checked whole) and mirror the setup in the URL."""
        self.urlstate.sync(location)

    def servable(self, title=None, location=True, area="main", target=None):
        doc = pn.state.curdoc
        if doc is None:
            return self.template.servable(title=title)
        # Bokeh walks every model of the document again for each root the template adds:
        # frozen, it walks them once, at the end
        with doc.models.freeze():
            return self.template.servable(title=title)

    def __panel__(self):
        return self.template


def prepare_session() -> None:
    """What each served session sets up before its app is built (app/main.py, and the tests
    that serve the app in-process): the Panel extensions whose scripts its page must carry (a
    page carries only those its session declares, and the Code & export tab's file dropper is
    built after the page was sent), the faster walk of the document's models
    (app/bokeh_references.py), the faster serialization of the models a session sends
    (app/bokeh_serialization.py) and widget events under the document's lock
    (widgets/locked_events.py), each installed once per process."""
    pn.extension("filedropper", notifications=False, sizing_mode="stretch_width")
    install_faster_walk()
    install_faster_serialization()
    install_locked_events()


def create_app(trainer_factory=server_trainer, period_ms: int = PERIOD_MS) -> BatscopeApp:
    """A fresh app (state, controllers, views, template) for the current session."""
    app = BatscopeApp(trainer_factory=trainer_factory, period_ms=period_ms)
    if pn.state.location is not None:
        app.sync_url(pn.state.location)
    return app
