"""The commands: their entry points (`commands`), `bn-study` (`app`), `bn-study-studies` and `bn-study-collect`
(`studies`), `bn-study-verify` (`verify`) and the benchmarks (`bench`, `bench_cnn`)."""
