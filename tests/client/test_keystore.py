"""The keystore: passphrase protection, the unprotected mode, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_lib.errors import KeystoreCorruptError, WrongPassphrase
from client_lib.keystore import FAST_FOR_TESTS, Keystore, SpaceKind
from protocol.crypto import DeviceKey, member_id_of

SPACE = bytes(range(16))


def _create(path: Path, **kwargs: object) -> Keystore:
    key = DeviceKey.generate()
    return Keystore.create(
        path,
        device_key=key,
        member_id=member_id_of(key.public),
        display_name="Sam",
        limits=FAST_FOR_TESTS,
        **kwargs,  # type: ignore[arg-type]
    )


def test_round_trip_with_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "keystore.accord"
    store = _create(path, passphrase="correct horse")
    store.add_space(SPACE, kind=SpaceKind.SHARED, label="us")
    store.add_epoch_key(SPACE, 0, b"k" * 32)
    again = Keystore.open(path, passphrase="correct horse")
    assert again.is_protected
    assert again.device_key.public == store.device_key.public
    assert again.member_id == store.member_id
    assert again.display_name == "Sam"
    assert again.epoch_keys(SPACE) == {0: b"k" * 32}
    assert again.space(SPACE).label == "us"
    assert again.store_key == store.store_key


def test_wrong_passphrase_is_a_typed_error_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keystore.accord"
    _create(path, passphrase="right")
    before = path.read_bytes()
    with pytest.raises(WrongPassphrase) as info:
        Keystore.open(path, passphrase="wrong")
    assert info.value.code == "wrong_passphrase"
    with pytest.raises(WrongPassphrase):
        Keystore.open(path, passphrase=None)
    assert path.read_bytes() == before


def test_secrets_are_not_in_the_protected_file(tmp_path: Path) -> None:
    path = tmp_path / "keystore.accord"
    store = _create(path, passphrase="pw")
    store.add_space(SPACE, kind=SpaceKind.SHARED, label="our-secret-label")
    data = path.read_bytes()
    assert store.device_key.seed not in data
    assert b"our-secret-label" not in data
    assert "DeviceKey" not in repr(store) and store.device_key.seed.hex() not in repr(store)


def test_unprotected_mode_is_marked(tmp_path: Path) -> None:
    path = tmp_path / "keystore.accord"
    store = _create(path, no_passphrase=True)
    assert not store.is_protected
    again = Keystore.open(path)
    assert not again.is_protected
    assert again.device_key.seed == store.device_key.seed


def test_passphrase_and_no_passphrase_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        _create(tmp_path / "a", passphrase="x", no_passphrase=True)
    with pytest.raises(ValueError):
        _create(tmp_path / "b")


def test_change_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "keystore.accord"
    store = _create(path, no_passphrase=True)
    store.change_passphrase("new one", limits=FAST_FOR_TESTS)
    with pytest.raises(WrongPassphrase):
        Keystore.open(path, passphrase="old")
    assert Keystore.open(path, passphrase="new one").is_protected


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "keystore.accord"
    path.write_bytes(b"not a keystore")
    with pytest.raises(KeystoreCorruptError):
        Keystore.open(path, passphrase="x")


def test_epoch_key_cannot_change(tmp_path: Path) -> None:
    store = _create(tmp_path / "k", no_passphrase=True)
    store.add_space(SPACE, kind=SpaceKind.PRIVATE, label="me")
    assert store.add_epoch_key(SPACE, 1, b"a" * 32)
    assert not store.add_epoch_key(SPACE, 1, b"a" * 32)
    with pytest.raises(ValueError):
        store.add_epoch_key(SPACE, 1, b"b" * 32)


def test_no_temp_file_left_behind(tmp_path: Path) -> None:
    store = _create(tmp_path / "keystore.accord", passphrase="pw")
    store.set_display_name("Alex")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keystore.accord"]
