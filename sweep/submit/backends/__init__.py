"""Backends run rendered jobs. One small interface (see base.Backend), two implementations:

* local    – runs the jobs on this machine, packed onto its cores (the embedded default);
* htcondor – hands them to an HTCondor schedd through the htcondor2 bindings.
"""

from .base import Backend, SubmitReport

__all__ = ["Backend", "SubmitReport"]
