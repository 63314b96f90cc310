"""Which learning rate Figure 1 uses: the fig1 network over a grid of rates, selected on the validation split."""

from __future__ import annotations

from .registry import Study

STUDY = Study("fig1_pilot", "Figure 1's learning rate, selected on the validation split",
              "why fig1 uses its learning rate: both arms over lr 0.1 to 8, 10,000 steps, 3 seeds, best median validation accuracy",
              sweeps=("fig1_pilot",), order=1)
