"""Where a device keeps its data: one directory per profile.

The base directory is the user's data directory for ``accord`` (platformdirs), or
the directory named by the environment variable ``ACCORD_HOME`` when it is set; tests
and demos point it at a temporary directory so several devices can live on one
machine. Inside the base::

    <base>/profiles/<profile>/keystore.accord   passphrase-protected keys (keystore.py)
    <base>/profiles/<profile>/store.sqlite3     verified entries, outbox, snapshots (store.py)

A profile is one device. Profile names are short and filesystem-safe.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from client_lib.errors import NoSuchProfileError, ProfileExistsError

#: Environment variable that overrides the base data directory.
HOME_ENV = "ACCORD_HOME"
APP_NAME = "accord"
DEFAULT_PROFILE = "default"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def base_dir() -> Path:
    """The base data directory: ``$ACCORD_HOME`` if set, else the user's data dir."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def check_profile_name(name: str) -> str:
    """Check that ``name`` is a usable profile name.

    Raises:
        ValueError: empty, too long, or holding characters other than letters, digits,
            ``-``, ``_`` and ``.`` (and not starting with one of the last three).
    """
    if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name):
        raise ValueError(
            "a profile name is 1 to 64 letters, digits, '-', '_' or '.', starting with a "
            "letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilePaths:
    """The files of one profile."""

    name: str
    directory: Path

    @property
    def keystore(self) -> Path:
        return self.directory / "keystore.accord"

    @property
    def store(self) -> Path:
        return self.directory / "store.sqlite3"

    def exists(self) -> bool:
        return self.keystore.exists()


def profile_paths(name: str = DEFAULT_PROFILE, *, base: Path | None = None) -> ProfilePaths:
    """The paths of profile ``name`` (whether or not it exists yet).

    Raises:
        ValueError: see :func:`check_profile_name`.
    """
    check_profile_name(name)
    root = base if base is not None else base_dir()
    return ProfilePaths(name=name, directory=root / "profiles" / name)


def create_profile_dir(name: str, *, base: Path | None = None) -> ProfilePaths:
    """Create the directory of a new profile, readable by this user only.

    Raises:
        ValueError: see :func:`check_profile_name`.
        ProfileExistsError: the profile already holds a keystore.
    """
    paths = profile_paths(name, base=base)
    if paths.exists():
        raise ProfileExistsError(f"a profile named {name!r} already exists")
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return paths


def existing_profile(name: str = DEFAULT_PROFILE, *, base: Path | None = None) -> ProfilePaths:
    """The paths of a profile that must exist.

    Raises:
        ValueError: see :func:`check_profile_name`.
        NoSuchProfileError: there is no keystore for that profile.
    """
    paths = profile_paths(name, base=base)
    if not paths.exists():
        raise NoSuchProfileError(f"there is no profile named {name!r}")
    return paths


def list_profiles(*, base: Path | None = None) -> list[str]:
    """Names of the profiles that hold a keystore, sorted."""
    root = (base if base is not None else base_dir()) / "profiles"
    if not root.is_dir():
        return []
    names = []
    for child in root.iterdir():
        if _PROFILE_NAME.fullmatch(child.name) and (child / "keystore.accord").exists():
            names.append(child.name)
    return sorted(names)


def remove_profile(name: str, *, base: Path | None = None) -> None:
    """Delete a profile's directory and everything in it (local wipe).

    Raises:
        ValueError: see :func:`check_profile_name`.
        NoSuchProfileError: there is no such profile directory.
    """
    paths = profile_paths(name, base=base)
    if not paths.directory.is_dir():
        raise NoSuchProfileError(f"there is no profile named {name!r}")
    shutil.rmtree(paths.directory)
