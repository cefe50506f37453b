"""Commands about this device and its connection: init, pair, join, devices, sync,
status, export, import, wipe. Each takes the parsed arguments and an :class:`Output`
and returns an exit code; each raises :class:`CliError` for what the person can fix.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from client_lib.account import Account
from client_lib.backup import export_profile, import_profile
from client_lib.errors import ProfileExistsError
from client_lib.events import Accepted
from client_lib.pairing import JoinOffer, JoinRequest, create_invite, join
from client_lib.pairing_events import devices_added
from client_lib.pairing_qr import QrImageError, decode_qr_image
from client_lib.paths import profile_paths
from client_lib.relay_client import RelayCallError, RelayUnreachable
from client_lib.sync import SyncEngine, SyncReport, relay_url_of, set_relay_url
from clients.cli.context import (
    CliError,
    Context,
    opened,
    profile_name,
    read_passphrase,
)
from clients.cli.output import Output
from clients.cli.watch import Narrator
from protocol.crypto import fingerprint
from protocol.errors import AccordError
from protocol.pairing_codes import Purpose

QUIET_AFTER_MS = 7 * 24 * 3600 * 1000


def _short(data: bytes) -> str:
    return data.hex()[:8]


# -- init --------------------------------------------------------------------------------


def cmd_init(args: Any, out: Output) -> int:
    profile = profile_name(args)
    passphrase = None
    if not args.no_passphrase:
        passphrase = read_passphrase(confirm=True, prompt="Choose a passphrase for this device: ")
        if not passphrase:
            raise CliError(
                "A passphrase is needed to protect this device's keys.",
                "Run this in a terminal, set ACCORD_PASSPHRASE, or use --no-passphrase for tests.",
            )
    try:
        account = Account.create(
            profile,
            display_name=args.name,
            passphrase=passphrase,
            no_passphrase=args.no_passphrase,
            found_private_space=not args.join,
        )
    except ProfileExistsError:
        raise CliError(
            f"The profile '{profile}' already exists on this machine.",
            "Use it as it is, or choose another name with --profile NAME.",
        ) from None
    except ValueError as error:
        raise CliError(str(error), "Choose another profile name.") from None
    try:
        relay = (args.relay or "http://127.0.0.1:8787").rstrip("/")
        config = {"relay": relay}
        (account.paths.directory / "cli.json").write_text(
            __import__("json").dumps(config), encoding="utf-8"
        )
        if not account.is_protected:
            out.warn(
                "This device's keys are stored WITHOUT a passphrase: anyone with this "
                "computer's files can read them. Use this only for tests and demos."
            )
        out.say(f"This device is ready. Its fingerprint: {fingerprint(account.device)}")
        space = None
        if not args.join:
            handle = account.create_space("us")
            space = handle.space
            for info in account.spaces():
                set_relay_url(account.replica(info.space), relay)
            out.say("A new space for you and your partner is ready.")
            out.say("Next: invite your partner with `accord pair`, then sync with `accord sync`.")
        else:
            out.say("Next: join your partner's space with `accord join CODE`.")
        out.data(
            {
                "profile": profile,
                "device": account.device.hex(),
                "fingerprint": fingerprint(account.device),
                "space": space.hex() if space else None,
                "relay": relay,
                "protected": account.is_protected,
            }
        )
    finally:
        account.close()
    return 0


# -- pairing -----------------------------------------------------------------------------


def cmd_pair(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        replica = handle.replica
        relay = relay_url_of(replica) or ctx.relay
        purpose = Purpose.SELF if args.self_pair else Purpose.PARTNER
        return asyncio.run(_pair(ctx, handle.space, relay, purpose))


async def _pair(ctx: Context, space: bytes, relay: str, purpose: Purpose) -> int:
    out = ctx.out
    args = ctx.args
    # Upload what this device has first, so the joining device finds the whole space.
    await _sync_spaces(ctx, quiet=True)
    try:
        invitation = await create_invite(ctx.account, space, relay_url=relay, purpose=purpose)
    except RelayUnreachable:
        raise CliError(
            f"The relay at {relay} cannot be reached, so no code could be made.",
            "Check that the relay is running, then try again.",
        ) from None
    if args.png:
        Path(args.png).write_bytes(invitation.qr_png)
    who = "your other device" if purpose is Purpose.SELF else "your partner's device"
    if not out.json_mode:
        out.say(f"Scan this code with {who}:")
        out.say(invitation.qr_text)
        if args.png:
            out.say(f"The QR code is also in {args.png}.")
        out.say(f"Or type this code on it: {invitation.code}")
        minutes = max(1, (invitation.expires_at - int(time.time()) + 59) // 60)
        out.say(
            f"The code works once, for about {minutes} minutes. Waiting for the other device..."
        )
    out.data({"uri": invitation.uri, "code": invitation.code, "png": args.png})
    sys.stdout.flush()

    def decide(request: JoinRequest) -> bool:
        out.say("")
        out.say(f"'{request.name}' is asking to join (device {request.fingerprint}).")
        if request.private:
            out.say("As your own device, it would also read your journal and private answers.")
        out.say(f"Check that the other screen shows the same number: {request.sas}")
        if args.yes:
            return True
        if not sys.stdin.isatty():
            out.say("No answer can be given here, so the request is declined.")
            return False
        answer = input(f"Add '{request.name}'? Only say yes if the numbers match [y/N]: ")
        return answer.strip().lower() in {"y", "yes"}

    try:
        result = await invitation.run(decide)
    except (AccordError, TimeoutError, RelayCallError, RelayUnreachable) as error:
        raise CliError(
            f"Pairing stopped: {_pairing_words(error)}",
            "Nothing was added. Start again with a new code: `accord pair`.",
        ) from None
    if result.outcome.value != "joined":
        out.say("The request was declined. Nothing was added.")
        return 0
    if result.private_space is not None:
        out.say("The device was added. It shares your space, your journal and private answers.")
    else:
        out.say("The device was added. Both devices now share the space.")
    # Both roster entries went up during the pairing; this sends anything left over.
    await _sync_spaces(ctx, quiet=True)
    return 0


def _pairing_words(error: BaseException) -> str:
    code = getattr(error, "code", None)
    text = {
        "expired": "the code expired.",
        "pairing_failed": "the codes did not match, or something interfered on the way.",
        "unknown_channel": "the code is no longer valid.",
        "channel_claimed": "another device used this code first.",
    }.get(str(code.value if hasattr(code, "value") else code))
    if isinstance(error, TimeoutError):
        text = "no other device answered in time."
    return text or f"{error}"


def cmd_join(args: Any, out: Output) -> int:
    if not args.code and not args.qr_image:
        raise CliError(
            "Give the code, or --qr-image FILE.", "For example: accord join --qr-image invite.png"
        )
    text = args.code
    if args.qr_image:
        try:
            text = decode_qr_image(Path(args.qr_image))
        except (QrImageError, OSError) as error:
            raise CliError(
                f"No Accord code could be read from {args.qr_image}: {error}",
                "Use a clearer picture, or type the code instead.",
            ) from None
    profile = profile_name(args)
    paths = profile_paths(profile)
    if not paths.exists():
        if not args.name:
            raise CliError(
                "This device is not set up yet.",
                "Add --name YOUR_NAME so the other device knows who is asking.",
            )
        passphrase = None
        if not args.no_passphrase:
            passphrase = read_passphrase(
                confirm=True, prompt="Choose a passphrase for this device: "
            )
            if not passphrase:
                raise CliError(
                    "A passphrase is needed to protect this device's keys.",
                    "Run this in a terminal, set ACCORD_PASSPHRASE, or use --no-passphrase.",
                )
        Account.create(
            profile,
            display_name=args.name,
            passphrase=passphrase,
            no_passphrase=args.no_passphrase,
            found_private_space=False,
        ).close()
    with opened(args, out) as ctx:
        if args.relay:
            ctx.config["relay"] = args.relay.rstrip("/")
            ctx.save_config()
        return asyncio.run(_join(ctx, text))


async def _join(ctx: Context, text: str) -> int:
    out = ctx.out

    def show(offer: JoinOffer) -> None:
        whose = (
            "your own space" if offer.purpose is Purpose.SELF else f"{offer.inviter_name}'s space"
        )
        out.say(f"Joining {whose} (their device {offer.inviter_fingerprint}).")
        if offer.private:
            out.say("Your journal and private answers will come to this device too.")
        out.say(f"Check that the other screen shows the same number: {offer.sas}")
        out.say("Waiting for them to approve...")
        sys.stdout.flush()

    try:
        result = await join(ctx.account, text, relay_url=ctx.relay, on_offer=show)
    except (AccordError, TimeoutError, RelayCallError, RelayUnreachable) as error:
        raise CliError(
            f"Joining stopped: {_pairing_words(error)}",
            "Ask for a new code on the other device (`accord pair`) and try again.",
        ) from None
    if result.outcome.value != "joined":
        out.say("The other device declined. Nothing was changed here.")
        return 0
    ctx.config["relay"] = result.relay
    ctx.save_config()
    new_member = ctx.account.member_id == _own_member(ctx)  # not another device of one
    if ctx.account.private_replica() is None and new_member:
        private = ctx.account.found_private_space()  # a new member's own journal
        set_relay_url(private, result.relay)
    handle = ctx.account.space(result.space)
    if new_member:
        handle.agreements.set_my_name(ctx.account.display_name)
    await _sync_spaces(ctx, quiet=True)
    out.say("You joined the space. Your agreements will appear here as they sync.")
    if result.private_space is not None:
        out.say("Your journal and private answers are on this device too.")
    elif ctx.account.private_replica() is None:
        out.say(
            "Your journal stays on your other devices: the device that invited this one "
            "had none to share. Link this device from one that has it to read it here."
        )
    out.data(
        {
            "space": result.space.hex(),
            "relay": result.relay,
            "private_space": None if result.private_space is None else result.private_space.hex(),
        }
    )
    return 0


def _own_member(ctx: Context) -> bytes:
    from protocol.crypto import member_id_of

    return member_id_of(ctx.account.device)


# -- devices -----------------------------------------------------------------------------


def cmd_devices(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        devices = handle.devices()
        if args.action == "remove":
            if not args.device:
                raise CliError("Name the device to remove.", "See the ids with `accord devices`.")
            matches = [d for d in devices if d.device.hex().startswith(args.device.lower())]
            if len(matches) != 1:
                raise CliError(
                    "No single device matches that id.",
                    "Give more of its id (see `accord devices`).",
                )
            target = matches[0]
            if not args.yes and sys.stdin.isatty():
                answer = input(
                    f"Remove device {_short(target.device)}? It will not read anything new [y/N]: "
                )
                if answer.strip().lower() not in {"y", "yes"}:
                    out.say("Nothing was removed.")
                    return 0
            try:
                handle.remove_device(target.device)
            except AccordError as error:
                raise CliError(
                    f"That device cannot be removed from here: {error.message}"
                ) from None
            except Exception as error:  # NotAllowedError and friends carry calm messages
                raise CliError(str(getattr(error, "message", error))) from None
            out.say(
                "The device was removed and a new key was made for the others. "
                "It cannot read anything written from now on; what it already holds stays with it."
            )
            asyncio.run(_sync_spaces(ctx, quiet=True))
            return 0
        rows = []
        for d in devices:
            who = "?" if d.member is None else ctx.name_of(handle, d.member)
            rows.append(
                [
                    _short(d.device) + (" (this one)" if d.is_this_device else ""),
                    who,
                    "active" if d.active else "removed",
                    d.fingerprint,
                ]
            )
        out.table("Devices", ["Device", "Member", "State", "Fingerprint"], rows)
        out.data(
            [
                {
                    "device": d.device.hex(),
                    "member": d.member.hex() if d.member else None,
                    "active": d.active,
                    "fingerprint": d.fingerprint,
                }
                for d in devices
            ]
        )
    return 0


# -- sync and status ---------------------------------------------------------------------


async def _sync_spaces(ctx: Context, *, quiet: bool = False) -> SyncReport:
    """Sync every space of this device once. Raises CliError when the relay is away."""
    total = SyncReport()
    out = ctx.out
    for handle in ctx.synced_spaces():
        replica = handle.replica
        with out.progress("Syncing") as advance:
            engine = SyncEngine(
                replica, device_key=ctx.account.keystore.device_key, progress=advance
            )
            try:
                report = await engine.sync()
                total.add(report)
                if report.push_refused is not None:
                    out.warn(
                        "The relay refused some of this device's changes "
                        f"({report.push_refused.code}): they stay on this device, unsent. "
                        "Everything else was received. `accord status` shows more."
                    )
                for added in devices_added(ctx.account, handle.space, report.events):
                    if added.device != ctx.account.device:
                        out.say(added.describe())
            except RelayUnreachable:
                raise CliError(
                    f"The relay at {relay_url_of(replica)} cannot be reached right now.",
                    "Your changes are kept on this device and will go out at the next sync.",
                ) from None
            except RelayCallError as error:
                if error.code in {"device_removed", "unknown_device"}:
                    raise CliError(
                        "The relay no longer accepts this device in that space.",
                        "If this device was removed, its local copy stays until `accord wipe`.",
                    ) from None
                raise CliError(f"The relay refused the sync: {error.message}") from None
            finally:
                await engine.close()
    if not quiet:
        out.say(f"Synced: {total.pushed} sent, {total.received} received.")
    for problem in total.problems:
        out.warn(f"Warning: {problem.describe()}")
    return total


def cmd_sync(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        if not args.watch:
            report = asyncio.run(_sync_spaces(ctx))
            out.data(
                {
                    "sent": report.pushed,
                    "received": report.received,
                    "problems": [p.describe() for p in report.problems],
                }
            )
            return 0
        return asyncio.run(_watch(ctx, args.timeout))


async def _watch(ctx: Context, timeout: float | None) -> int:
    out = ctx.out
    stop = asyncio.Event()
    engines = []
    tasks = []
    handles = ctx.synced_spaces()

    arrived: set[bytes] = set()

    def on_event(event: Any) -> None:
        if getattr(event, "is_problem", False):
            out.warn(f"Warning: {event.describe()}")
        elif isinstance(event, Accepted):
            arrived.add(event.space)

    narrators = {}
    for handle in handles:
        narrators[handle.space] = Narrator(
            handle, lambda member, handle=handle: ctx.name_of(handle, member)
        )
        engine = SyncEngine(
            handle.replica, device_key=ctx.account.keystore.device_key, on_event=on_event
        )
        engines.append(engine)
        tasks.append(asyncio.create_task(engine.run(stop)))

    async def tell() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.3)
            for space in list(arrived):
                arrived.discard(space)
                lines = narrators[space].news()
                for line in lines:
                    out.say(line)
                if not lines:
                    out.note("Changes arrived (the plan, notes or a private answer).")

    tasks.append(asyncio.create_task(tell()))
    out.say("Staying in sync. Press Ctrl-C to stop.")
    try:
        if timeout is not None:
            await asyncio.sleep(timeout)
        else:
            await asyncio.gather(*tasks)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in engines:
            await engine.close()
    return 0


def cmd_status(args: Any, out: Output) -> int:
    with opened(args, out) as ctx:
        handle = ctx.shared_space()
        status = handle.replica.status()
        now = int(time.time() * 1000)
        rows = []
        for d in status.devices:
            who = "?" if d.member is None else ctx.name_of(handle, d.member)
            heard = "-" if d.last_heard_at is None else _ago(now - d.last_heard_at)
            rows.append(
                [_short(d.device), who, "active" if d.active else "removed", str(d.have_seq), heard]
            )
        out.say(f"Relay: {relay_url_of(handle.replica) or ctx.relay}")
        out.say(f"Waiting to be sent: {status.outbox} entries.")
        out.table("Devices", ["Device", "Member", "State", "Entries", "Last heard"], rows)
        for d in status.quiet_devices(QUIET_AFTER_MS):
            out.say(
                f"Device {_short(d.device)} has not been heard from for a while. "
                "That can be normal; if it is unexpected, the relay may be holding entries back."
            )
        problems = handle.replica.problems()
        for problem in problems:
            out.warn(f"Warning: {problem.detail}")
        if not problems:
            out.say("No tampering, forks or rollbacks have been seen.")
        out.data(
            {
                "outbox": status.outbox,
                "epoch": status.epoch,
                "problems": [p.detail for p in problems],
                "devices": [
                    {
                        "device": d.device.hex(),
                        "have_seq": d.have_seq,
                        "last_heard_at": d.last_heard_at,
                    }
                    for d in status.devices
                ],
            }
        )
    return 0


def _ago(ms: int) -> str:
    seconds = max(0, ms // 1000)
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds // 60} minutes ago"
    if seconds < 129600:
        return f"{seconds // 3600} hours ago"
    return f"{seconds // 86400} days ago"


# -- backup and wipe ---------------------------------------------------------------------


def cmd_export(args: Any, out: Output) -> int:
    profile = profile_name(args)
    # Opening checks that the profile exists and that this person holds its passphrase.
    from clients.cli.context import open_account

    account = open_account(profile)
    paths = account.paths
    account.close()
    passphrase = read_passphrase(confirm=True, prompt="Choose a passphrase for the backup: ")
    if not passphrase:
        raise CliError(
            "A backup needs its own passphrase.",
            "Run this in a terminal, or set ACCORD_PASSPHRASE.",
        )
    size = export_profile(paths, Path(args.file), passphrase=passphrase)
    out.say(f"Backup written to {args.file} ({size} bytes, encrypted with its own passphrase).")
    out.data({"file": args.file, "bytes": size})
    return 0


def cmd_import(args: Any, out: Output) -> int:
    profile = profile_name(args)
    passphrase = read_passphrase(prompt="The backup's passphrase: ")
    if not passphrase:
        raise CliError(
            "The backup's passphrase is needed.",
            "Run this in a terminal, or set ACCORD_PASSPHRASE.",
        )
    try:
        import_profile(Path(args.file), profile, passphrase=passphrase)
    except ProfileExistsError:
        raise CliError(
            f"The profile '{profile}' already exists.", "Import into a new one with --profile NAME."
        ) from None
    out.say(f"The backup was restored into the profile '{profile}'.")
    out.say(
        "Use it in place of the device it came from, not beside it: two copies of one "
        "device writing at the same time would look to your partner like tampering."
    )
    return 0


def cmd_wipe(args: Any, out: Output) -> int:
    profile = profile_name(args)
    paths = profile_paths(profile)
    if not paths.directory.exists():
        out.say(f"There is nothing stored for the profile '{profile}'.")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("Wiping needs a confirmation.", "Run it in a terminal, or add --yes.")
        answer = input(
            f"Remove all of '{profile}' from this computer? "
            "Other devices keep what they hold. [y/N]: "
        )
        if answer.strip().lower() not in {"y", "yes"}:
            out.say("Nothing was removed.")
            return 0
    import shutil

    shutil.rmtree(paths.directory)
    out.say(
        f"All local data of '{profile}' was removed from this computer. "
        "What other devices already hold is not affected."
    )
    return 0
