"""Entry point of the `accord` command.

Errors a person can act on are printed as two calm lines (what happened, what to do
next). Anything unexpected is written with its traceback to the profile's log file,
and the person is told where that file is; no traceback reaches the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from client_lib.errors import ClientError
from clients.cli import agreement_commands as agreements
from clients.cli import device_commands as devices
from clients.cli.context import CliError, log_path, profile_name, setup_logging
from clients.cli.output import Output
from clients.cli.parser import build_parser

Handler = Callable[[Any, Output], int]


def _demo(args: Any, out: Output) -> int:
    from clients.cli.demo import run_demo

    return run_demo(args, out)


HANDLERS: dict[str, Handler] = {
    "demo": _demo,
    "init": devices.cmd_init,
    "pair": devices.cmd_pair,
    "join": devices.cmd_join,
    "devices": devices.cmd_devices,
    "sync": devices.cmd_sync,
    "status": devices.cmd_status,
    "export": devices.cmd_export,
    "import": devices.cmd_import,
    "wipe": devices.cmd_wipe,
    "items": agreements.cmd_items,
    "pause": agreements.cmd_pause,
    "resume": agreements.cmd_resume,
    "checkin": agreements.cmd_checkin,
    "repair": agreements.cmd_repair,
    "plan": agreements.cmd_plan,
    "journal": agreements.cmd_journal,
    "timeline": agreements.cmd_timeline,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    out = Output(json_mode=bool(getattr(args, "json", False)))
    profile = profile_name(args)
    try:
        return HANDLERS[args.command](args, out)
    except CliError as error:
        out.error(error.message, error.hint)
        return error.exit_code
    except ClientError as error:
        out.error(error.message[:1].upper() + error.message[1:] + ".")
        return 1
    except KeyboardInterrupt:
        out.error("Stopped. Nothing that was saved is lost.")
        return 130
    except Exception:
        try:
            path = setup_logging(profile)
            logging.getLogger("accord.cli").exception("unexpected error in %s", args.command)
        except OSError:
            path = log_path(profile)
        out.error(
            "Something unexpected went wrong. Nothing that was saved is lost.",
            f"The details are in {path}; please include that file if you report it.",
        )
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
