"""What a sweep leaves on disk, read by more than one stage (below submit and collect, which
never import each other). Where a run stands is sweep.core.states.RunState.

manifest.py  jobs/<sweep>/sweep.json: the sweep's runs, submissions and learnt memory
runs.py      results/<sweep>/<run-id>/: whether a run left a valid result, and why not
events.py    results/<sweep>/events.log: HTCondor's job event log, one record per job
"""
