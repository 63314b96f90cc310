"""One run: its checks before it starts (`preflight`), the compiled training loop (`train`), its checkpoints, its
trackers, its run folder (`records`), and `execute`, which drives them into run.json and curves.csv."""
