"""The training layer (no Panel): configurations, the training loop, run folders and the CLI.

Used by the app, the ``batscope train`` command and sweeps alike. Imports go one way: engine ←
datasets ← training ← widgets ← app.
"""
