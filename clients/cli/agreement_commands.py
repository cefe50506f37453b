"""Commands about the agreements themselves: items, pause, resume, check-ins, repairs,
the crisis plan, the journal and the timeline.

Local changes are written at once (they are in force on this device, offline too) and
go out at the next `accord sync`. Wording stays calm: nothing here counts, nags or
asks anyone for reasons (DESIGN.md section 4a).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from client_lib.account import SpaceHandle
from client_lib.agreements import ItemView
from client_lib.errors import ClientError, NoSuchRecordError
from clients.cli.context import CliError, Context, opened
from clients.cli.output import Output
from protocol.errors import AccordError

DAY_MS = 24 * 3600 * 1000


def _short(data: bytes) -> str:
    return data.hex()[:8]


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def find_by_prefix(ids: Sequence[bytes], prefix: str, what: str) -> bytes:
    """The one id that starts with ``prefix`` (hex).

    Raises:
        CliError: none or several match.
    """
    prefix = prefix.strip().lower()
    matches = [i for i in ids if i.hex().startswith(prefix)] if prefix else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(
            f"No {what} has an id starting with '{prefix}'.", f"See the ids with `accord {what}s`."
        )
    raise CliError(f"Several {what}s start with '{prefix}'.", "Give more of the id.")


def _waiting_words(ctx: Context, handle: SpaceHandle, view: ItemView) -> str:
    names: list[str] = []
    for members in view.waiting_for.values():
        for member in members:
            name = ctx.name_of(handle, member)
            if name not in names:
                names.append(name)
    if not names:
        return ""
    return "waiting for " + ", ".join(names)


def item_rows(ctx: Context, handle: SpaceHandle, out: Output) -> list[list[str]]:
    rows = []
    for view in handle.agreements.items():
        pending = not view.agreed
        state = "agreed" if view.agreed else "pending"
        if view.concurrent:
            state += f" ({len(view.heads)} versions at once)"
        rows.append(
            [
                _short(view.item),
                view.title,
                view.kind.value,
                out.level(view.level.value, pending=pending),
                state,
                _waiting_words(ctx, handle, view),
            ]
        )
    return rows


def print_items(ctx: Context, handle: SpaceHandle) -> None:
    out = ctx.out
    pause = handle.agreements.pause_state()
    if pause.active:
        who = ", ".join(ctx.name_of(handle, m) for m in pause.paused_by)
        out.say(f"Paused by {who}: everything is 'no' until they resume.", style="bold red")
    rows = item_rows(ctx, handle, out)
    if not rows:
        out.say("No agreements yet. Add one with `accord items add TITLE --level no|ask|yes`.")
    else:
        out.table("Agreements", ["Id", "Item", "Kind", "In force", "State", "Notes"], rows)
    out.data([_item_json(ctx, handle, view) for view in handle.agreements.items()])


def _item_json(ctx: Context, handle: SpaceHandle, view: ItemView) -> dict[str, Any]:
    return {
        "item": view.item.hex(),
        "title": view.title,
        "kind": view.kind.value,
        "status": view.status.value,
        "level": view.level.value,
        "heads": [
            {
                "version": head.id.hex(),
                "level": head.level.value,
                "author": ctx.name_of(handle, head.author),
            }
            for head in view.heads
        ],
        "waiting_for": {
            head.hex(): [ctx.name_of(handle, m) for m in members]
            for head, members in view.waiting_for.items()
        },
        "summary": view.summary,
    }


def cmd_items(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        agreements = handle.agreements
        sub = getattr(args, "items_command", None)
        try:
            if sub is None:
                print_items(ctx, handle)
                return 0
            if sub == "add":
                view = agreements.create_item(
                    kind=args.kind,
                    level=args.level,
                    title=args.title,
                    details=args.details,
                    revisit=args.revisit,
                )
                out.say(
                    f"Added '{view.title}' ({_short(view.item)}) at {out.level(args.level)}. "
                    "It is in force here now and goes to your partner at the next sync."
                )
                out.data(_item_json(ctx, handle, view))
                return 0
            items = [view.item for view in agreements.items()]
            item = find_by_prefix(items, args.item, "item")
            if sub == "change":
                if (
                    args.level is None
                    and args.title is None
                    and args.details is None
                    and args.revisit is None
                ):
                    raise CliError("Say what to change.", "For example: --level no")
                view = agreements.change_item(
                    item,
                    level=args.level,
                    title=args.title,
                    details=args.details,
                    revisit=args.revisit if args.revisit is not None else "",
                )
                out.say(
                    f"Changed '{view.title}'. In force now: "
                    f"{out.level(view.level.value, pending=not view.agreed)}."
                )
                if not view.agreed:
                    out.say(view.summary)
                out.data(_item_json(ctx, handle, view))
                return 0
            if sub == "affirm":
                view = agreements.item(item)
                if args.version:
                    version = find_by_prefix(
                        [h.id for h in agreements.history(item)], args.version, "version"
                    )
                elif len(view.heads) == 1:
                    version = view.heads[0].id
                else:
                    raise CliError(
                        "This item has more than one current version.",
                        "Choose one with --version (see `accord items history ITEM`).",
                    )
                expires = (
                    None if args.days is None else int(time.time() * 1000) + args.days * DAY_MS
                )
                view = agreements.affirm(version, expires_at=expires)
                state = "agreed" if view.agreed else view.summary
                out.say(
                    f"You affirmed '{view.title}'. Now: "
                    f"{out.level(view.level.value, pending=not view.agreed)} ({state})."
                )
                out.data(_item_json(ctx, handle, view))
                return 0
            if sub == "history":
                rows = []
                for version in agreements.history(item):
                    rows.append(
                        [
                            _short(version.id),
                            _when(version.created_at),
                            version.author_name,
                            out.level(version.level.value),
                            version.title,
                            ", ".join(ctx.name_of(handle, m) for m in version.endorsed_by),
                        ]
                    )
                out.table(
                    "History", ["Version", "When", "By", "Level", "Title", "Affirmed by now"], rows
                )
                out.data(
                    [
                        {
                            "version": v.id.hex(),
                            "level": v.level.value,
                            "title": v.title,
                            "created_at": v.created_at,
                        }
                        for v in agreements.history(item)
                    ]
                )
                return 0
        except NoSuchRecordError as error:
            raise CliError(error.message, "See the ids with `accord items`.") from None
        except (AccordError, ValueError) as error:
            raise CliError(
                f"That change could not be made: {getattr(error, 'message', error)}"
            ) from None
    return 0


def cmd_pause(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        handle.agreements.pause()
        out.say(
            "Paused. Everything is 'no' now, on this device at once and on your partner's "
            "as soon as it syncs. Resume whenever you choose with `accord resume`."
        )
        out.data({"paused": True})
    return 0


def cmd_resume(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        state = handle.agreements.pause_state()
        if not state.mine:
            if state.active:
                out.say("Only the person who paused can resume their pause; yours is not active.")
            else:
                out.say("Nothing is paused.")
            return 0
        handle.agreements.resume()
        state = handle.agreements.pause_state()
        if state.active:
            out.say("Your pause is lifted. Someone else's pause is still in force.")
        else:
            out.say("Your pause is lifted. Your agreements are back as they were.")
        out.data({"paused": state.active})
    return 0


def cmd_checkin(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        checkins = handle.checkins
        try:
            if args.set_schedule:
                days, _, note = args.set_schedule.partition(" ")
                if not days.isdigit():
                    raise CliError(
                        "Give the schedule as DAYS and an optional note.",
                        'For example: --set-schedule "7 Sunday evening"',
                    )
                checkins.set_schedule(every_days=int(days), note=note)
                out.say("The check-in schedule is set for both of you.")
            if args.schedule or args.set_schedule:
                schedule = checkins.schedule()
                if schedule is None:
                    out.say("No schedule yet. Set one with --set-schedule.")
                else:
                    out.say(
                        f"Check-ins every {schedule.every_days} days"
                        + (f": {schedule.note}" if schedule.note else ".")
                    )
                return 0
            if args.safety is None:
                rows = [
                    [
                        _when(v.record.at),
                        str(v.record.safety),
                        v.record.feels_safe,
                        v.record.triggering,
                        v.record.would_help,
                        "shared" if v.shared else "private",
                    ]
                    for v in checkins.mine()
                ]
                if not rows:
                    out.say("No check-ins yet. Answer one with `accord checkin --safety 1-5`.")
                out.table(
                    "Your check-ins",
                    ["When", "Safety", "Feels safe", "Triggering", "Would help", ""],
                    rows,
                )
                return 0
            record = checkins.record(
                safety=args.safety,
                feels_safe=args.safe,
                triggering=args.triggering,
                would_help=args.helpful,
                share=args.share,
            )
        except (AccordError, ClientError) as error:
            raise CliError(
                f"The check-in could not be saved: {getattr(error, 'message', error)}"
            ) from None
        where = (
            "and shared with your partner"
            if args.share
            else "privately; only your devices can read it"
        )
        out.say(f"Check-in saved {where}. Thank you for taking the time.")
        out.data({"id": record.id.hex(), "shared": args.share})
    return 0


REPAIR_STEPS = {
    "acknowledge": "acknowledgement",
    "apologise": "apology",
    "act": "corrective-action",
    "plan": "prevention-plan",
}


def cmd_repair(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        log = handle.repairs
        try:
            if args.action is None:
                entries = log.entries()
                if not entries:
                    out.say("The repair log is empty.")
                for entry in entries:
                    state = "closed" if entry.closed else "open"
                    out.say(
                        f"{_short(entry.id)}  {entry.what_happened}  ({state}; "
                        f"harmed: {ctx.name_of(handle, entry.harmed)})"
                    )
                    for step in entry.steps:
                        by = ctx.name_of(handle, step.member)
                        out.say(f"    {step.step.value}: {step.text}  — {by}")
                out.data(
                    [
                        {"id": e.id.hex(), "what": e.what_happened, "closed": e.closed}
                        for e in entries
                    ]
                )
                return 0
            if args.action == "name":
                if not args.target:
                    raise CliError(
                        "Say what happened.", 'For example: accord repair name "Went past ask"'
                    )
                harmed = None
                if args.harmed != "me":
                    members = set(handle.replica.members()) - {ctx.account.member_id}
                    matches = [
                        m
                        for m in members
                        if handle.agreements.name_of(m).lower() == args.harmed.lower()
                    ]
                    if len(matches) != 1:
                        raise CliError(
                            f"No one named '{args.harmed}' is in this space.",
                            "Use --harmed me, or their name.",
                        )
                    harmed = matches[0]
                repair = log.name_crossing(args.target, harmed=harmed)
                out.say(
                    f"The crossing is named ({_short(repair)}). "
                    "The person harmed decides when it is closed."
                )
                out.data({"id": repair.hex()})
                return 0
            repair = find_by_prefix([e.id for e in log.entries()], args.target or "", "repair")
            if args.action == "close":
                view = log.close(repair, args.text)
                out.say("This repair is closed.")
            else:
                if not args.text:
                    raise CliError(
                        "Add the words of this step.",
                        'For example: accord repair acknowledge 7b1c "I did that."',
                    )
                view = log.add_step(repair, REPAIR_STEPS[args.action], args.text)
                out.say(f"Added the {REPAIR_STEPS[args.action].replace('-', ' ')} to the repair.")
            out.data({"id": view.id.hex(), "closed": view.closed})
        except ClientError as error:
            raise CliError(error.message) from None
        except (AccordError, ValueError) as error:
            raise CliError(
                f"That step could not be saved: {getattr(error, 'message', error)}"
            ) from None
    return 0


PLAN_SECTIONS = {
    "deescalation": "de-escalation",
    "de-escalation": "de-escalation",
    "return": "return-to-intimacy",
    "return-to-intimacy": "return-to-intimacy",
    "cooling-off": "cooling-off",
}


def cmd_plan(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        plan = handle.plan
        try:
            if args.add_step:
                section, text = args.add_step
                if section.lower() not in PLAN_SECTIONS:
                    raise CliError(
                        f"'{section}' is not a part of the plan.", "Use deescalation or return."
                    )
                step = plan.add_step(PLAN_SECTIONS[section.lower()], text)
                out.say(f"Added step {_short(step)}.")
            if args.cooling_off is not None:
                plan.add_step(
                    "cooling-off",
                    f"Cooling-off period of {args.cooling_off} minutes",
                    minutes=args.cooling_off,
                )
                out.say(f"The cooling-off period is {args.cooling_off} minutes.")
            if args.notes is not None:
                plan.set_wording(args.notes)
                out.say("The plan's shared words were updated.")
            if args.opt_in:
                step_id = find_by_prefix([s.id for s in plan.steps()], args.opt_in, "step")
                view = plan.opt_in(step_id)
                out.say(
                    "You opted in to this step."
                    + ("" if view.active else " It waits for each person's own opt-in.")
                )
        except ClientError as error:
            raise CliError(error.message) from None
        except (AccordError, ValueError) as error:
            raise CliError(
                f"The plan could not be changed: {getattr(error, 'message', error)}"
            ) from None
        steps = plan.steps()
        wording = plan.wording()
        if wording:
            out.say(wording)
        rows = []
        for step in steps:
            who = ", ".join(ctx.name_of(handle, m) for m in step.opted_in) or "-"
            rows.append([_short(step.id), step.section.value, step.text, who])
        if rows:
            out.table("Crisis plan", ["Step", "Part", "What", "Opted in"], rows)
        elif not wording:
            out.say("The crisis plan is empty. Add a step with --add-step deescalation TEXT.")
        out.data(
            {
                "wording": wording,
                "steps": [
                    {
                        "id": s.id.hex(),
                        "section": s.section.value,
                        "text": s.text,
                        "active": s.active,
                    }
                    for s in steps
                ],
            }
        )
    return 0


def cmd_journal(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        try:
            journal = ctx.account.journal()
        except ClientError:
            raise CliError(
                "Your journal lives in your private space, which this device is not part of.",
                "This device was linked from one that had no journal to share. Write it on "
                "the device you first set up, or link this device again from one that has it.",
            ) from None
        if args.text:
            journal.write(args.text)
            out.say("Written to your private journal. Only your own devices can read it.")
            return 0
        entries = journal.entries()
        if not entries:
            out.say("Your journal is empty.")
        for entry in entries:
            out.say(f"{_when(entry.at)}  {entry.text}")
        out.data([{"at": e.at, "text": e.text} for e in entries])
    return 0


def cmd_timeline(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        mine = [view.record for view in handle.checkins.mine()]
        events = handle.agreements.timeline(extra=mine)
        rows = []
        for event in events:
            what = event.kind
            if event.title:
                what += f": {event.title}"
            if event.level is not None:
                what += f" ({event.level.value})"
            if event.safety is not None:
                what += f" safety {event.safety}"
            rows.append([_when(event.at), ctx.name_of(handle, event.member), what])
        out.table("Timeline", ["When", "Who", "What"], rows)
        if args.plot:
            from clients.cli.plot import plot_timeline

            plot_timeline(events, args.plot, name_of=lambda m: ctx.name_of(handle, m))
            out.say(f"The chart is in {args.plot}.")
        out.data(
            [
                {
                    "at": e.at,
                    "kind": e.kind,
                    "title": e.title,
                    "level": e.level.value if e.level else None,
                    "safety": e.safety,
                }
                for e in events
            ]
        )
    return 0
