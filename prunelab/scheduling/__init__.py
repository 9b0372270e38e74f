"""Who runs a run, and when: the schedulers and the suites they are given.

`protocol` is the `Scheduler` protocol and the `JobInfo` snapshot every scheduler reports (the CLI and the
app see jobs through it alone); `jobs` is the local scheduler (`JobManager`: worker threads of this
process, a FIFO queue, cancel, recovery and resume); `ray_backend` the other (`RaySuiteRunner`: one Ray
task per run); `suites` builds the named sets of runs both are given (presets, sweeps, equal budgets);
`limits` states every count's upper limit with its reason (runs at once, seeds, sweep values, runs per
suite, Ray shares), which the CLI, the app and the schedulers all check.
The two schedulers never import each other; both change a run's state only through `runs.run_life`.
"""
