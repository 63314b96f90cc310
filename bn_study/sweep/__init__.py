"""Sweeps: every job checked and recorded in sweep.json before the first runs, its progress lines, its threads
(`manifest`), and one owner per folder (`ownership`)."""
