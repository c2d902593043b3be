"""Pure core of sweep: no HTCondor, no TensorFlow, no subprocesses.

grid.py     read a grid YAML file with positions and validate it  -> GridSpec
schema.py   what each key and hyperparameter may hold (vocabularies kept here)
units.py    memory / duration parsing
expand.py   GridSpec -> list[RunSpec] (product, zip, exclude, sample, repeats, ids)
render.py   RunSpec -> submit file / config / wrapper text (Jinja, StrictUndefined)
ranking.py  result records -> ranked leaderboard
"""
