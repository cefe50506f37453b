"""The `accord` command tree: every command, its options and its --help example.

The handlers live in :mod:`clients.cli.commands`; this module only describes the
commands, so `accord --help` and the docs draw from one place.
"""

from __future__ import annotations

import argparse
from textwrap import dedent


def _examples(text: str) -> str:
    return "example:\n" + dedent(text).strip("\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_common(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    parser.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="which device profile to use (default: 'default'; or set ACCORD_PROFILE)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accord",
        formatter_class=_Formatter,
        description=(
            "Keep your agreements with your partner: boundaries, signals, check-ins,\n"
            "repairs and a crisis plan, synced end-to-end encrypted through a relay."
        ),
        epilog=_examples(
            """
            accord demo                              # see everything work, in a temporary place
            accord init --name Sam --relay http://127.0.0.1:8787
            accord pair --png invite.png             # show a code for your partner
            accord join --qr-image invite.png --name Alex --profile alex
            accord items add "Kissing" --level ask
            """
        ),
    )
    parser.add_argument("--version", action="version", version="accord 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, help_text: str, example: str, json_flag: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_examples(example),
            formatter_class=_Formatter,
        )
        _add_common(p, json_flag=json_flag)
        return p

    p = command(
        "demo",
        "Run the whole story in a temporary directory: a relay, two paired devices, a sync.",
        "accord demo",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory afterwards")

    p = command(
        "init",
        "Create this device, and a new space for you and your partner (or prepare to join one).",
        """
        accord init --name Sam --relay http://127.0.0.1:8787
        accord init --name Alex --join          # then: accord join CODE
        """,
    )
    p.add_argument("--name", required=True, help="the name your partner will see")
    p.add_argument("--relay", default=None, help="relay URL (default: http://127.0.0.1:8787)")
    p.add_argument("--join", action="store_true", help="only create the device; join later")
    p.add_argument(
        "--no-passphrase",
        action="store_true",
        help="store keys UNPROTECTED on disk (for tests and demos only)",
    )

    p = command(
        "pair",
        "Invite your partner (or --self: another device of yours) with a QR code or typed code.",
        """
        accord pair --png invite.png     # partner runs: accord join --qr-image invite.png
        accord pair --self                      # link your own second device
        """,
    )
    p.add_argument(
        "--self", dest="self_pair", action="store_true", help="link another device of yours"
    )
    p.add_argument("--png", metavar="FILE", help="also write the QR code to this PNG file")
    p.add_argument("--yes", action="store_true", help="approve without asking (scripts only)")

    p = command(
        "join",
        "Join a space with the code your partner's device shows.",
        """
        accord join 4-river-lamp-mint-cloud --name Alex --profile alex
        accord join --qr-image invite.png --name Alex --profile alex
        """,
    )
    p.add_argument("code", nargs="?", help="the typed code, or the accord://pair/... link")
    p.add_argument("--qr-image", metavar="FILE", help="a picture of the QR code")
    p.add_argument(
        "--relay",
        default=None,
        help="the relay's address, needed with a typed code (the QR code carries it)",
    )
    p.add_argument("--name", help="the name the other device will see (needed if not set up yet)")
    p.add_argument(
        "--no-passphrase", action="store_true", help="store keys UNPROTECTED (tests only)"
    )

    p = command(
        "devices",
        "List the devices in your space, or remove one.",
        """
        accord devices
        accord devices remove 3f2a9c1e
        """,
    )
    p.add_argument("action", nargs="?", choices=["remove"], help="remove a device")
    p.add_argument("device", nargs="?", help="the device id (or its first hex digits)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = command(
        "items",
        "List your agreements with their state and the level in force.",
        """
        accord items
        accord items add "Kissing" --level ask --kind permission
        accord items change 3f2a --level no
        accord items affirm 3f2a
        accord items history 3f2a
        """,
    )
    items = p.add_subparsers(dest="items_command", metavar="SUBCOMMAND")
    ip = items.add_parser(
        "add",
        help="add an item",
        formatter_class=_Formatter,
        epilog=_examples('accord items add "Kissing" --level ask'),
    )
    _add_common(ip)
    ip.add_argument("title")
    ip.add_argument("--level", choices=["no", "ask", "yes"], required=True)
    ip.add_argument(
        "--kind",
        choices=["limit", "permission", "preference", "signal", "plan-step"],
        default="preference",
    )
    ip.add_argument("--details", default="")
    ip.add_argument("--revisit", metavar="YYYY-MM-DD", default=None)
    ip = items.add_parser(
        "change",
        help="change an item (a new version)",
        formatter_class=_Formatter,
        epilog=_examples("accord items change 3f2a --level no"),
    )
    _add_common(ip)
    ip.add_argument("item", help="the item id (or its first hex digits)")
    ip.add_argument("--level", choices=["no", "ask", "yes"])
    ip.add_argument("--title")
    ip.add_argument("--details")
    ip.add_argument("--revisit", metavar="YYYY-MM-DD")
    ip = items.add_parser(
        "affirm",
        help="affirm the current version of an item",
        formatter_class=_Formatter,
        epilog=_examples("accord items affirm 3f2a --days 30"),
    )
    _add_common(ip)
    ip.add_argument("item")
    ip.add_argument("--version", help="a specific version id (default: the single current head)")
    ip.add_argument(
        "--days", type=int, default=None, help="let this affirmation lapse after N days"
    )
    ip = items.add_parser(
        "history",
        help="every version and affirmation of an item",
        formatter_class=_Formatter,
        epilog=_examples("accord items history 3f2a"),
    )
    _add_common(ip)
    ip.add_argument("item")

    command(
        "pause", "Pause everything at once. Every item is 'no' until you resume.", "accord pause"
    )
    command("resume", "Lift your own pause.", "accord resume")

    p = command(
        "checkin",
        "Answer a check-in (kept private unless you --share), or show the schedule.",
        """
        accord checkin --safety 4 --safe "slow pace" --triggering "" --helpful "more notice"
        accord checkin --schedule                       # show the schedule
        accord checkin --set-schedule "Sundays 19:00"
        """,
    )
    p.add_argument("--safety", type=int, choices=range(1, 6), metavar="1-5", help="sense of safety")
    p.add_argument("--safe", default="", help="what feels safe")
    p.add_argument("--triggering", default="", help="what is triggering")
    p.add_argument("--helpful", default="", help="what would help")
    p.add_argument("--share", action="store_true", help="share this check-in with your partner")
    p.add_argument("--schedule", action="store_true", help="show the check-in schedule")
    p.add_argument("--set-schedule", metavar="TEXT", help="set the shared schedule")

    p = command(
        "repair",
        "The repair log: name a crossing, then acknowledge, apologise, act, plan, close.",
        """
        accord repair                                   # list entries
        accord repair name "Went past 'ask' on touch" --harmed me
        accord repair acknowledge 7b1c "I did that, and it mattered."
        accord repair close 7b1c                        # only the person harmed can close
        """,
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["name", "acknowledge", "apologise", "act", "plan", "close"],
    )
    p.add_argument("target", nargs="?", help="a description (name) or a repair id")
    p.add_argument("text", nargs="?", default="", help="the words of this step")
    p.add_argument("--harmed", default="me", help="who was harmed: 'me' or the partner's name")

    p = command(
        "plan",
        "Show or edit the crisis plan: de-escalation, cooling-off, return to intimacy.",
        """
        accord plan
        accord plan --add-step deescalation "Name the pause word, step apart"
        accord plan --cooling-off 30
        accord plan --opt-in 2c9e
        """,
    )
    p.add_argument(
        "--add-step", nargs=2, metavar=("SECTION", "TEXT"), help="SECTION is deescalation or return"
    )
    p.add_argument("--cooling-off", type=int, metavar="MINUTES")
    p.add_argument("--opt-in", metavar="STEP", help="opt in to a return-to-intimacy step")
    p.add_argument("--notes", metavar="TEXT", help="replace the plan's shared notes")

    p = command(
        "journal",
        "Your private journal, in your own space. Your partner cannot read it or count it.",
        """
        accord journal                       # read
        accord journal "A calmer day."       # write
        """,
    )
    p.add_argument("text", nargs="?")

    p = command(
        "sync",
        "Sync with the relay; --watch stays live.",
        "accord sync --watch",
    )
    p.add_argument(
        "--watch", action="store_true", help="stay connected and show changes as they come"
    )
    p.add_argument("--timeout", type=float, default=None, help="with --watch, stop after N seconds")

    command(
        "status", "Sync health, last heard from each device, and any warnings.", "accord status"
    )

    p = command(
        "timeline",
        "How things changed over time; --plot draws check-in scores and agreement changes.",
        "accord timeline --plot timeline.png",
    )
    p.add_argument("--plot", metavar="FILE.png")

    p = command(
        "export", "Write an encrypted backup of this device.", "accord export backup.accord"
    )
    p.add_argument("file")
    p = command(
        "import",
        "Restore an encrypted backup into a profile.",
        "accord import backup.accord --profile restored",
    )
    p.add_argument("file")

    p = command(
        "wipe", "Remove all local data of this profile, after a confirmation.", "accord wipe"
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    return parser
