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

from .step import step_main  # noqa: E402 - only once the environment check has passed

_step = step_main(sys.argv[1:])  # a chain's simulation or evaluation: config.yaml names its `step`
if _step is not None:
    sys.exit(_step)

from .runner import main  # noqa: E402 - only for a training job, not a chain's step

sys.exit(main())
