"""What every `accord` command needs: the profile, its account, its relay and space.

Passphrases come from ``ACCORD_PASSPHRASE`` (scripts) or a hidden prompt (a person);
they are never printed or logged. Each profile keeps a small ``cli.json`` beside its
keystore with the relay address it uses by default. Unexpected errors are written to
``<profile>/accord.log`` and the person is told where it is.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client_lib.account import Account, SpaceHandle
from client_lib.errors import NoSuchProfileError, WrongPassphrase
from client_lib.keystore import SpaceKind
from client_lib.paths import DEFAULT_PROFILE, base_dir, profile_paths
from client_lib.sync import relay_url_of, set_relay_url
from clients.cli.output import Output

PROFILE_ENV = "ACCORD_PROFILE"
PASSPHRASE_ENV = "ACCORD_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_RELAY = "http://127.0.0.1:8787"
CONFIG_FILE = "cli.json"


class CliError(Exception):
    """An error the person can act on: what happened, and what to do next."""

    def __init__(self, message: str, hint: str | None = None, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = code


def profile_name(args: Any) -> str:
    name = getattr(args, "profile", None) or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    return str(name)


def log_path(profile: str) -> Path:
    """Where unexpected errors of a profile are written."""
    try:
        directory = profile_paths(profile).directory
    except ValueError:
        directory = base_dir()
    if not directory.exists():
        directory = base_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "accord.log"


def read_passphrase(*, confirm: bool = False, prompt: str = "Passphrase: ") -> str | None:
    """The passphrase from the environment, or asked for on a terminal."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if confirm:
        again = getpass.getpass("The same passphrase again: ")
        if again != first:
            raise CliError("The two passphrases differ.", "Run the command again.")
    return first


@dataclass
class Context:
    """An open profile."""

    args: Any
    out: Output
    profile: str
    account: Account
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.account.paths.directory / CONFIG_FILE

    def save_config(self) -> None:
        self.config_path.write_text(json.dumps(self.config, indent=2), encoding="utf-8")

    @property
    def relay(self) -> str:
        return str(self.config.get("relay") or DEFAULT_RELAY)

    def shared_space(self) -> SpaceHandle:
        """The relationship space this device is in (the first one).

        Raises:
            CliError: this device has not joined or founded one yet.
        """
        for info in self.account.spaces():
            if info.kind is SpaceKind.SHARED:
                return self.account.space(info.space)
        raise CliError(
            "This device is not in a shared space yet.",
            "Join one with `accord join CODE`, or start one with `accord init`.",
        )

    def synced_spaces(self) -> list[SpaceHandle]:
        """Every space of this device that has a relay to sync with."""
        handles = []
        for info in self.account.spaces():
            replica = self.account.replica(info.space)
            if relay_url_of(replica) is None:
                set_relay_url(replica, self.relay)
            handles.append(self.account.space(info.space))
        return handles

    def name_of(self, handle: SpaceHandle, member: bytes) -> str:
        if member == self.account.member_id:
            return "you"
        return handle.agreements.name_of(member)


def open_account(profile: str) -> Account:
    """Open a profile, asking for its passphrase when it has one.

    Raises:
        CliError: no such profile, or the passphrase does not open it.
    """
    try:
        return Account.open(profile)
    except NoSuchProfileError:
        raise CliError(
            f"There is no profile named '{profile}' on this machine.",
            "Create it with `accord init --name YOUR_NAME"
            + (f" --profile {profile}`." if profile != DEFAULT_PROFILE else "`."),
        ) from None
    except WrongPassphrase:
        pass
    passphrase = read_passphrase()
    if passphrase is None:
        raise CliError(
            "This profile is protected by a passphrase.",
            f"Set {PASSPHRASE_ENV}, or run the command in a terminal to be asked for it.",
        )
    try:
        return Account.open(profile, passphrase=passphrase)
    except WrongPassphrase:
        raise CliError(
            "That passphrase does not open this profile. Nothing was changed.",
            "Try again; passphrases are case-sensitive.",
        ) from None


def load_config(account: Account) -> dict[str, Any]:
    path = account.paths.directory / CONFIG_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@contextmanager
def opened(args: Any, out: Output) -> Iterator[Context]:
    """Open the profile named by ``--profile`` for one command, and close it after."""
    profile = profile_name(args)
    account = open_account(profile)
    try:
        yield Context(
            args=args, out=out, profile=profile, account=account, config=load_config(account)
        )
    finally:
        account.close()


def setup_logging(profile: str) -> Path:
    """Send warnings and errors of the libraries to the profile's log file."""
    path = log_path(profile)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    return path
