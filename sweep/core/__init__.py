"""Pure core of sweep: no HTCondor, no TensorFlow, no subprocesses, no pandas at import time.
It imports nothing of sweep outside sweep.core (tests/test_layout.py checks it).

errors.py       the error base (SweepError) and the subclasses users meet
names.py        every file, folder and job-attribute name two stages share; SweepPaths
states.py       RunState: the one vocabulary of where a run stands (schedd, event log, results)
yamlpos.py      YAML with the line and column of every key and value
schema.py       what each key and hyperparameter may hold (vocabularies kept here)
units.py        memory / duration parsing
validation.py   reading and parsing an input file, a Validator that collects every mistake with its place
gridspec.py     GridSpec, a validated grid (data, resources, site, axes, search) and what derives from it
jobsettings.py  resources, condor and the site profile that gives defaults for both
grid.py         a grid file -> GridSpec: the grid's own sections and the checks that need all of it
canonical.py    canonical JSON (value equality, configuration ids)
expand.py       GridSpec -> list[RunSpec] (product, zip, exclude, sample, repeats, ids)
render.py       RunSpec -> submit file / config / wrapper text (Jinja, StrictUndefined)
ranking.py      result rows -> ranked table
metrics.py      classifier and regressor metrics (numpy, scikit-learn on call)
"""
