"""Stage 1 of the flow: a suite's YAML becomes a validated, typed `Suite`.

`read` (safe YAML with bounds) -> `overrides` (``--set``) -> `parse` (typed sections, every
problem collected) with `params` (values against Config dataclasses) and `labels` (row names)
-> `checks` (cross-section rules) -> `load` (the entry point, `load_suite`). `values` holds the
typed results, `published` the papers' numbers a suite names, `docs` the generated reference.
"""
