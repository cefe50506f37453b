"""A relay process whose event-loop thread can be profiled for a while, on signal.

``python -m bench.profiled_relay PROFILE_PATH serve ...`` runs ``accord-relay`` with
the given arguments. SIGUSR1 starts cProfile, SIGUSR2 stops it and writes the profile
to PROFILE_PATH, so start-up (imports, migrations check, first compilations) stays out
of what is measured. Used by :mod:`bench.relay_profile` only.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

from server.cli import main as relay_main


def main() -> int:
    path, *arguments = sys.argv[1:]
    profiler = cProfile.Profile()

    def start(_signal: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return relay_main(arguments)


if __name__ == "__main__":
    sys.exit(main())
