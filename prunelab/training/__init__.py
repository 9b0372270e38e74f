"""What a run does when it trains and measures: the engine, its checks before a start, and the measures.

`engine` is the one training loop for every method (`Trainer`: phases, SGD, AMP, per-image evaluation,
checkpoints, resume; `run_training` trains one run directory), driven by a method plug-in's hooks and
never naming a method; `preflight` and `resources` check before a run starts that its dataset is there and
that it fits in this machine's memory (shared by the CLI and the app's forms); `flops` (MACs and
parameters) and `latency` (timed forward passes) are the measures the engine, the methods and the exports
report. Runs are written through `runs`; nothing here schedules or draws.
"""
