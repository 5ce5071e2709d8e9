"""Named crash points for fault-injection tests.

A process started with ``RECUR_CRASH_AT=<name>`` kills itself with SIGKILL when it reaches
the point of that name, exactly as an operator's ``kill -9`` or an out-of-memory kill of a
worker would: no ``finally`` blocks, no rollback hooks, no acknowledgement. Tests start a
real worker with the variable set, let it die, start a clean one and check that every piece
of work still ends exactly once. Unset (always, outside those tests) a point costs one
dictionary lookup.
"""

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("RECUR_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
