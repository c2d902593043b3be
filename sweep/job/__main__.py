import json
import os
import sys

from ..core.names import RUN_INFO
from .envcheck import EXIT_ENVIRONMENT, describe, problems

# Before anything that needs numpy or TensorFlow: an interpreter that cannot run the job ends
# it at once with one line and its own exit status (never retried), and run.json says why.
_missing = problems()
if _missing:
    _line = describe(_missing)
    print(_line, file=sys.stderr)
    with open(RUN_INFO + ".tmp", "w", encoding="utf-8") as _fh:
        json.dump({"status": "failed", "exit_code": EXIT_ENVIRONMENT, "error": _line}, _fh)
    os.replace(RUN_INFO + ".tmp", RUN_INFO)
    sys.exit(EXIT_ENVIRONMENT)

from .step import step_main  # noqa: E402

_step = step_main(sys.argv[1:])  # a chain's simulation or evaluation: config.yaml names its `step`
if _step is not None:
    sys.exit(_step)

from .runner import main  # noqa: E402

sys.exit(main())
