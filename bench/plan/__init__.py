"""Stage 2 of the flow: a `Suite` becomes train jobs and their eval jobs.

`jobs` (stable keys, the DAG), `fingerprint` (the code behind a job), `selection`
(``--baselines``/``--seeds``/``--threats``/``--datasets`` filters).
"""
