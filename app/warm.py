"""``panel serve --setup``: compile the Numba kernels once, before the first session arrives."""

from batscope.app.presets import load_preset
from batscope.training.trainer import Trainer

_trainer = Trainer(load_preset("convergence").config)
_trainer.step()
_trainer.snapshot(heavy=True)
