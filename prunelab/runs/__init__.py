"""A run on disk: its directory's files, their checks, who owns it and every change of its state.

`run_format` is the bottom (file names, run states, the one atomic writer, which makes no folder; it imports
nothing from prunelab, so a method's torch-free `config.py` may use it); `artefacts` and `artefact_checks`
check every file when it is read; `store` creates, lists and reads run directories (`RunStore`, `RunDir`);
`model_file` records in a model file the run it was written for and refuses another run's; `ownership`
keeps one owner per run (`owner.lock`, heartbeat, stale takeover); `progress` is a running run's live
figures and cancel flag; `run_life` is the one place a run's state changes (status.json), below both
schedulers; `safe_text` shows a run's strings without their control characters; `viewer` is the read-only switch
(`PRUNELAB_VIEWER`) under which the store, the trainer and the schedulers refuse every write into a runs folder.
Nothing here trains, schedules or draws anything.
"""
