"""The reproduced studies: each module declares one (or a few) in the registry, with its sweeps, claims and
figures. `bn-study-studies` (bn_study.cli.studies) runs them; `registry.studies()` lists them."""
