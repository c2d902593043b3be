import os
import sys
from pathlib import Path

from .envcheck import EXIT_ENVIRONMENT, describe, problems

# Before anything that needs numpy or TensorFlow: an interpreter that cannot run the job ends
# it at once with one line and its own exit status (never retried), and run.json says why
# (records.runinfo imports the standard library only).
_missing = problems()
if _missing:
    from ..records.runinfo import write_failed_run

    _line = describe(_missing)
    print(_line, file=sys.stderr)
    write_failed_run(Path.cwd(), EXIT_ENVIRONMENT, _line)
    sys.exit(EXIT_ENVIRONMENT)


def _exit_now(code: int) -> None:
    """End the process with `code` at once, skipping the interpreter's teardown: TensorFlow's costs
    a job about 1.3 s of CPU (measured on the demo grid's LSTM: 1.3-1.4 s after main returned,
    0.1 s with this) and does nothing a finished job needs. Every record the job writes is
    written atomically and closed before main returns; what it printed is flushed here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


from .step import step_main  # noqa: E402 - only once the environment check has passed

_step = step_main(sys.argv[1:])  # a chain's simulation or evaluation: config.yaml names its `step`
if _step is not None:
    _exit_now(_step)

from .runner import main  # noqa: E402 - only for a training job, not a chain's step

_exit_now(main())
