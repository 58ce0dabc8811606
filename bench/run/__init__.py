"""Stage 4 of the flow: one job inside a worker.

`worker` (the entry point that never raises), `runner` (train one job, evaluate one threat on
a checkpoint), `training` (the meta-update loop with validation-based selection),
`resume_state` (the resumable state on disk), `evaluate` (per-episode accuracies on the fixed
episodes), `stopping` (SIGINT/SIGTERM), `step_progress` (step counts for the driver's display).
"""
