"""Alerts for runs that stop learning: silent outputs, silent samples, dead layers, collapse.

Beyond the paper (batscope's own checks, issue 11): a silent output neuron's class can never be
predicted, and a sample on which every output is silent gives no error at all (docs/losses.md §3),
so a run whose outputs fall silent cannot recover by itself. The thresholds below decide when a run
has *collapsed*; the alerts say what happened and what to try.
"""

from __future__ import annotations

from collections import deque

from .evaluation import Evaluation

SILENT_SAMPLES = 0.5  # collapse: the output layer is silent on at least half the samples
ACCURACY_DROP = 0.2  # collapse: accuracy fell this far below the best so far
DEAD_LAYER = 0.5  # alert: half a hidden layer never fires
STEP_WINDOW = 20  # training batches watched for silent outputs between evaluations

REMEDY_HINT = (
    "Options beyond the paper: --remedy rollback (back to the best checkpoint, learning rate "
    "halved) or --remedy revive-silent (raise the weights of silent outputs); for a new run, "
    "--remedy redraw-silent (redraw at initialisation the outputs that do not fire)."
)


def collapsed(ev: Evaluation, best_accuracy: float) -> bool:
    """True when the outputs fell silent on most samples or the accuracy dropped sharply."""
    return (
        ev.health.silent_sample_fraction >= SILENT_SAMPLES
        or ev.row.accuracy < best_accuracy - ACCURACY_DROP
    )


def alerts(ev: Evaluation, best_accuracy: float) -> list[tuple[str, object, str]]:
    """``(kind, key, message)`` for everything wrong in one evaluation (empty when healthy);
    ``key`` (JSON-able) tells one state of a kind from another (see :func:`new_alerts`)."""
    h, r = ev.health, ev.row
    where = f"epoch {r.epoch}, {r.split} split"
    out = []
    if collapsed(ev, best_accuracy):
        best = f"best {100 * best_accuracy:.2f} %" if best_accuracy >= 0 else "no earlier epoch"
        head = "COLLAPSE at" if r.epoch > 0 else "SILENT OUTPUTS at initialisation,"
        out.append(
            (
                "collapse",
                True,
                f"{head} {where}: accuracy {100 * r.accuracy:.2f} % ({best}), output layer "
                f"silent on {100 * h.silent_sample_fraction:.1f} % of samples; silent outputs "
                "carry no error, so the run may never recover by itself. The best checkpoint is "
                "kept. " + REMEDY_HINT,
            )
        )
    if h.silent_outputs:
        out.append(
            (
                "silent-outputs",
                list(h.silent_outputs),
                f"{where}: output neuron(s) {list(h.silent_outputs)} never fire, so class(es) "
                f"{list(h.silent_outputs)} can never be predicted. " + REMEDY_HINT,
            )
        )
    for k, dead in enumerate(h.dead_fraction):
        if dead >= DEAD_LAYER:
            out.append(
                (
                    f"dead-layer-{k + 1}",
                    True,
                    f"{where}: {100 * dead:.0f} % of hidden layer {k + 1}'s neurons never fire.",
                )
            )
    return out


def new_alerts(found: list[tuple[str, object, str]], reported: dict) -> list[tuple[str, str]]:
    """The alerts of ``found`` not reported in the same state before; updates ``reported``.

    A kind that is no longer found is forgotten, so a relapse is reported again."""
    fresh = [(kind, msg) for kind, key, msg in found if reported.get(kind) != key]
    reported.clear()
    reported.update({kind: key for kind, key, _ in found})
    return fresh


class StepWatch:
    """Watches training batches between evaluations: fires once when outputs fall silent."""

    def __init__(self, window: int = STEP_WINDOW):
        self._recent: deque[float] = deque(maxlen=window)
        self.fired = False

    def add(self, silent_fraction: float) -> str | None:
        """The alert message the first time the window's mean reaches the collapse level."""
        self._recent.append(silent_fraction)
        full = len(self._recent) == self._recent.maxlen
        mean = sum(self._recent) / len(self._recent)
        if full and not self.fired and mean >= SILENT_SAMPLES:
            self.fired = True
            return (
                f"COLLAPSE while training: the output layer was silent on {100 * mean:.0f} % of "
                f"the last {len(self._recent)} batches' samples. " + REMEDY_HINT
            )
        return None

    def reset(self) -> None:
        self._recent.clear()
        self.fired = False

    def state(self) -> dict:
        """JSON-able state, so a resumed run alerts exactly when the uninterrupted one would."""
        return {"recent": list(self._recent), "fired": self.fired}

    def load_state(self, state: dict) -> None:
        self._recent.clear()
        self._recent.extend(float(x) for x in state["recent"])
        self.fired = bool(state["fired"])
