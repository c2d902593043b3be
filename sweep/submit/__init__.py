"""The submit stage: a grid file -> rendered files on disk (and the manifest) -> a backend.

prepare.py   validate, expand and render in memory; write jobs/<sweep>/ atomically
stage.py     what `sweep submit` and `sweep resubmit` do (the CLI only parses their arguments)
status.py    where each run stands: the schedd, the job event log and the results folder
backends/    base (the one-method interface), local (this machine), htcondor (DAG or one cluster)
"""
