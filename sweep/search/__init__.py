"""The search stage: adaptive hyperparameter search with Optuna, one HTCondor job per trial.

study.py   a search grid as an Optuna study (space, sampler, pruner, journal under results/<sweep>/)
trials.py  where trials run: HTCondorTrials (the pool; chirp for progress) and LocalTrials
driver.py  the driver: ask -> render -> submit -> follow -> report / prune -> tell; resume
stage.py   what `sweep search` does: the driver as a local-universe job, or here with --local
"""
