"""Run folders into tables: runs.csv, curves.parquet and by_config.csv (`collect`), the statistics across seeds
(`stats`) and the numbers read off curves (`curves`)."""
