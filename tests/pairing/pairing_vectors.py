"""Build the pairing vector files (protocol/vectors/pairing-*.json).

Run ``python tests/pairing/pairing_vectors.py`` from the repository root to rewrite the
files; ``test_pairing_vectors.py`` checks that the committed files are exactly what this
builds, and that the conformance runner passes them. Every random value is fixed here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # when run as a script
    sys.path.insert(0, str(ROOT))

from protocol import encoding  # noqa: E402
from protocol.checks.pairing import run_session  # noqa: E402
from protocol.crypto import DeviceKey, blake2b, member_id_of  # noqa: E402
from protocol.entry import SeenHead, seal_roster  # noqa: E402
from protocol.epochs import wrap_epoch_key  # noqa: E402
from protocol.pairing_codes import WORDS, InviteUri, Purpose, TypedCode, b64encode  # noqa: E402
from protocol.pairing_messages import (  # noqa: E402
    Offer,
    PrivateWelcome,
    Request,
    Welcome,
    encode_message,
)
from protocol.roster_records import (  # noqa: E402
    AddDevice,
    AddMember,
    Found,
    encode_record,
    join_proof,
)

VECTORS = ROOT / "protocol" / "vectors"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
RELAY = "https://relay.example.org/accord"


def fixed(label: str, size: int = 32) -> bytes:
    """A fixed, reproducible value for a vector input."""
    return blake2b(label.encode(), person=b"accord:test-vec", size=size)


def scalar(label: str) -> bytes:
    """A fixed SPAKE2 scalar below the group order (top four bits cleared)."""
    value = bytearray(fixed(label))
    value[0] &= 0x0F
    return bytes(value)


# -- pairing-code ---------------------------------------------------------------------------------


def code_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = [
        {"name": "the word list, in order: index = byte value", "words": list(WORDS)}
    ]
    for nameplate, secret in (
        ("7", bytes([0, 1, 2, 3])),
        ("42", bytes([255, 254, 128, 127])),
        ("90210", fixed("code secret", 4)),
    ):
        code = TypedCode.from_secret(nameplate=nameplate, secret=secret)
        cases.append(
            {
                "name": f"code from nameplate {nameplate} and secret {secret.hex()}",
                "nameplate": nameplate,
                "secret": secret.hex(),
                "code": str(code),
                "password": code.password.hex(),
            }
        )
    typed = TypedCode.from_secret(nameplate="42", secret=bytes([0, 1, 254, 255]))
    cases.append(
        {
            "name": "typed with capitals, blanks, mixed separators and a leading zero",
            "input": "  042 Acorn-ACROBAT   zinc - zipper ",
            "code": str(typed),
        }
    )
    for name, text in (
        ("a word not in the list", "42-acorn-acrobat-zinc-zeppelin"),
        ("a misspelt word", "42-acron-acrobat-zinc-zipper"),
        ("three words", "42-acorn-acrobat-zinc"),
        ("five words", "42-acorn-acrobat-zinc-zipper-apple"),
        ("no nameplate", "acorn-acrobat-zinc-zipper-apple"),
        ("a nameplate of nine digits", "123456789-acorn-acrobat-zinc-zipper"),
        ("a nameplate with a letter", "4a-acorn-acrobat-zinc-zipper"),
        ("empty", ""),
        ("non-ASCII letters", "42-acorn-acrobat-zinc-zïpper"),
    ):
        cases.append({"name": name, "input": text, "error": "malformed"})
    return cases


# -- pairing-uri ----------------------------------------------------------------------------------


def _uri_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "relay": RELAY,
        "channel": "Qm9vay1zaGVsZi0xMjM0",
        "key": fixed("uri key").hex(),
        "secret": fixed("uri secret").hex(),
        "expires": NOW + 120,
        "purpose": "partner",
    }
    fields.update(changes)
    return fields


def _uri(fields: dict[str, Any]) -> str:
    return InviteUri(
        relay=fields["relay"],
        channel=fields["channel"],
        key=bytes.fromhex(fields["key"]),
        secret=bytes.fromhex(fields["secret"]),
        expires=fields["expires"],
        purpose=Purpose(fields["purpose"]),
    ).to_uri()


def uri_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name, fields in (
        ("partner invite on an https relay with a path", _uri_fields()),
        (
            "self invite on a loopback relay with a port",
            _uri_fields(relay="http://127.0.0.1:8787", purpose="self", channel="c-1_x"),
        ),
    ):
        cases.append({"name": name, "fields": fields, "uri": _uri(fields), "now": NOW})
    good = _uri(_uri_fields())
    head, _, query = good.partition("?")
    params = query.split("&")
    swapped = head + "?" + "&".join([params[1], params[0], *params[2:]])
    short_secret = good.replace(
        "s=" + b64encode(fixed("uri secret")), "s=" + b64encode(fixed("uri secret")[:31])
    )
    expiry = f"x={NOW + 120}"
    bad = [
        ("expired: now equals the expiry", good, NOW + 120, "expired"),
        ("another version", good.replace("pair/1?", "pair/2?"), NOW, "unsupported_version"),
        ("another scheme", good.replace("accord://", "accrd://"), NOW, "malformed"),
        ("no version", good.replace("pair/1?", "pair/?"), NOW, "malformed"),
        ("parameters out of order", swapped, NOW, "malformed"),
        ("a parameter twice", good + "&m=partner", NOW, "malformed"),
        ("an unknown parameter", good + "&z=1", NOW, "malformed"),
        ("a missing parameter", good.replace("&m=partner", ""), NOW, "malformed"),
        ("an unknown purpose", good.replace("m=partner", "m=friend"), NOW, "malformed"),
        ("a padded key", good.replace("&s=", "=&s=", 1), NOW, "malformed"),
        ("a 31-byte secret", short_secret, NOW, "malformed"),
        ("lowercase percent escapes", good.replace("%3A%2F%2F", "%3a%2f%2f"), NOW, "malformed"),
        ("an unescaped relay URL", good.replace("%3A%2F%2F", "://"), NOW, "malformed"),
        (
            "an expiry with a leading zero",
            good.replace(expiry, "x=0" + expiry[2:]),
            NOW,
            "malformed",
        ),
        ("a relay that is not http", good.replace("https%3A", "ftp%3A"), NOW, "malformed"),
        ("a fragment", good + "#top", NOW, "malformed"),
    ]
    for name, uri, now, error in bad:
        cases.append({"name": name, "uri": uri, "now": now, "error": error})
    return cases


def _space_part(
    *,
    inviter: DeviceKey,
    space: bytes,
    record: AddMember | AddDevice,
    to: bytes,
    epoch_key: bytes,
    ephemeral_secret: bytes | None,
) -> tuple[tuple[SeenHead, ...], tuple[bytes, ...], bytes]:
    """One space's part of a welcome: the inviter founds the space (seq 1), then writes
    ``record`` (seq 2), and wraps the epoch-0 key for ``to``: (heads, envelopes, added)."""
    founding = seal_roster(
        device_key=inviter,
        space=space,
        seq=1,
        prev=None,
        epoch=0,
        record=encode_record(Found(member=member_id_of(inviter.public), device=inviter.public)),
    )
    added = seal_roster(
        device_key=inviter,
        space=space,
        seq=2,
        prev=founding.id,
        epoch=0,
        record=encode_record(record),
    )
    envelope = wrap_epoch_key(
        from_key=inviter,
        to=to,
        space=space,
        epoch=0,
        epoch_key=epoch_key,
        ephemeral_secret=ephemeral_secret,
    )
    heads = (SeenHead(device=inviter.public, seq=added.seq, id=added.id),)
    return heads, (envelope.to_bytes(),), added.to_bytes()


def build_welcome(
    *,
    inviter: DeviceKey,
    space: bytes,
    purpose: Purpose,
    request: Request,
    relay: str,
    epoch_key: bytes,
    ephemeral_secret: bytes | None = None,
) -> Welcome:
    """A real welcome: the inviter founds the space (seq 1), then adds the requested
    device (seq 2), and wraps the epoch-0 key for it."""
    record: AddMember | AddDevice
    if purpose is Purpose.PARTNER:
        record = AddMember(
            member=member_id_of(request.device), device=request.device, proof=request.proof
        )
    else:
        record = AddDevice(
            member=member_id_of(inviter.public), device=request.device, proof=request.proof
        )
    heads, envelopes, added = _space_part(
        inviter=inviter,
        space=space,
        record=record,
        to=request.device,
        epoch_key=epoch_key,
        ephemeral_secret=ephemeral_secret,
    )
    return Welcome(space=space, relay=relay, heads=heads, envelopes=envelopes, added=added)


def build_private_part(
    *,
    inviter: DeviceKey,
    private: bytes,
    device: bytes,
    proof: bytes,
    epoch_key: bytes,
    ephemeral_secret: bytes | None = None,
) -> PrivateWelcome:
    """A real private part (SPEC.md 11.12): the inviter founds its member's private space,
    then adds ``device`` to its member with ``proof``, and wraps the epoch-0 key."""
    record = AddDevice(member=member_id_of(inviter.public), device=device, proof=proof)
    heads, envelopes, added = _space_part(
        inviter=inviter,
        space=private,
        record=record,
        to=device,
        epoch_key=epoch_key,
        ephemeral_secret=ephemeral_secret,
    )
    return PrivateWelcome(space=private, heads=heads, envelopes=envelopes, added=added)


def _private_fields(part: PrivateWelcome) -> dict[str, Any]:
    return {
        "space": part.space.hex(),
        "heads": [[h.device.hex(), h.seq, h.id.hex()] for h in part.heads],
        "envelopes": [item.hex() for item in part.envelopes],
        "added": part.added.hex(),
    }


# -- pairing-message ------------------------------------------------------------------------------


def message_cases() -> list[dict[str, Any]]:
    """Sealed plaintexts with and without the private space of self pairing (11.12)."""
    inviter = DeviceKey.generate(fixed("message inviter device"))
    joiner = DeviceKey.generate(fixed("message joiner device"))
    space, private = fixed("message space", 16), fixed("message private space", 16)
    member = member_id_of(inviter.public)
    self_offer = Offer(
        purpose=Purpose.SELF,
        space=space,
        inviter=inviter.public,
        member=member,
        name="Alex’s laptop",
        private=private,
    )
    proof = join_proof(joiner, space=space, member=member, by=inviter.public)
    private_proof = join_proof(joiner, space=private, member=member, by=inviter.public)
    request = Request(
        device=joiner.public, name="Alex’s phone", proof=proof, private_proof=private_proof
    )
    welcome = build_welcome(
        inviter=inviter,
        space=space,
        purpose=Purpose.SELF,
        request=request,
        relay=RELAY,
        epoch_key=fixed("message epoch key"),
        ephemeral_secret=fixed("message envelope ephemeral"),
    )
    part = build_private_part(
        inviter=inviter,
        private=private,
        device=joiner.public,
        proof=private_proof,
        epoch_key=fixed("message private epoch key"),
        ephemeral_secret=fixed("message private envelope ephemeral"),
    )
    linked = Welcome(
        space=space,
        relay=RELAY,
        heads=welcome.heads,
        envelopes=welcome.envelopes,
        added=welcome.added,
        private=part,
    )
    cases: list[dict[str, Any]] = []

    def good(name: str, message: Offer | Request | Welcome) -> None:
        data = encode_message(message)
        cases.append({"name": name, "message": data.hex(), "type": message.TYPE.value})

    def bad(name: str, fields: dict[str, Any], error: str = "malformed") -> None:
        cases.append({"name": name, "message": encoding.encode(fields).hex(), "error": error})

    good("a self offer that names the private space", self_offer)
    good("a request with the private space's join proof", request)
    good("a welcome with the private space's part", linked)
    offer_map = self_offer.to_map()
    bad(
        "a partner offer that names a private space",
        {**offer_map, "purpose": "partner", "member": None},
    )
    bad("a private space given as null", {**offer_map, "private": None})
    bad("a private space equal to the offered space", {**offer_map, "private": space})
    bad("a private space id of 15 bytes", {**offer_map, "private": private[:15]})
    request_map = request.to_map()
    bad("a private space's proof given as null", {**request_map, "private_proof": None})
    bad("a private space's proof of 63 bytes", {**request_map, "private_proof": private_proof[:63]})
    welcome_map = linked.to_map()
    part_map = part.to_map()
    bad("a welcome's private part given as null", {**welcome_map, "private": None})
    bad(
        "a welcome's private part for the welcome's own space",
        {**welcome_map, "private": {**part_map, "space": space}},
    )
    bad(
        "a welcome's private part without its envelopes",
        {**welcome_map, "private": {k: v for k, v in part_map.items() if k != "envelopes"}},
    )
    bad(
        "a welcome's private part with an extra field",
        {**welcome_map, "private": {**part_map, "relay": RELAY}},
    )
    bad(
        "a welcome's private part that is an array", {**welcome_map, "private": [part_map["space"]]}
    )
    # An empty envelope list does not follow 11.6.5 ("at least one"): refused when the
    # welcome is decoded, before the checks of 11.9.
    bad("a welcome with no envelopes", {**welcome.to_map(), "envelopes": []})
    bad(
        "a welcome whose private part has no envelopes",
        {**welcome_map, "private": {**part_map, "envelopes": []}},
    )
    bad("a welcome with an empty envelope", {**welcome.to_map(), "envelopes": [b""]})
    # More than 256 items is a shape error too: `oversized` is kept for byte sizes (11.11).
    bad("a welcome with 257 envelopes", {**welcome.to_map(), "envelopes": [b"e"] * 257})
    return cases


# -- pairing-session ------------------------------------------------------------------------------


def session_inputs(
    label: str, *, mode: str, purpose: Purpose, approve: bool, private: str | None = None
) -> dict[str, Any]:
    """The inputs of one session. ``private`` (self pairing, SPEC.md 11.12): None, the
    inviter offers no private space; ``"offered"``, it does and the joiner leaves it out;
    ``"linked"``, the joiner signs its second proof and the welcome carries the part."""
    inviter_device = DeviceKey.generate(fixed(f"{label} inviter device"))
    joiner_device = DeviceKey.generate(fixed(f"{label} joiner device"))
    space = fixed(f"{label} space", 16)
    if purpose is Purpose.SELF:
        member = member_id_of(inviter_device.public)
    else:
        member = member_id_of(joiner_device.public)
    code = TypedCode.from_secret(nameplate="318", secret=fixed(f"{label} code", 4))
    inputs: dict[str, Any] = {
        "mode": mode,
        "relay": RELAY,
        "channel": "ch" + fixed(f"{label} channel", 9).hex(),
        "nameplate": code.nameplate,
        "purpose": purpose.value,
        "now": NOW,
        "expires": NOW + 120,
        "inviter_ephemeral_secret": fixed(f"{label} e_I").hex(),
        "secret": fixed(f"{label} s").hex(),
        "code_secret": code.secret.hex(),
        "inviter_pake_scalar": scalar(f"{label} x_A").hex(),
        "offer": {
            "purpose": purpose.value,
            "space": space.hex(),
            "inviter": inviter_device.public.hex(),
            "member": member.hex() if purpose is Purpose.SELF else None,
            "name": "Alex’s laptop",
        },
        "request": {
            "device": joiner_device.public.hex(),
            "name": "Sam" if purpose is Purpose.PARTNER else "Alex’s phone",
            "proof": join_proof(
                joiner_device, space=space, member=member, by=inviter_device.public
            ).hex(),
        },
        "welcome": None,
    }
    private_space = fixed(f"{label} private space", 16)
    private_proof = join_proof(
        joiner_device, space=private_space, member=member, by=inviter_device.public
    )
    if private is not None:
        inputs["offer"]["private"] = private_space.hex()
    if private == "linked":
        inputs["request"]["private_proof"] = private_proof.hex()
    if mode == "qr":
        inputs["joiner_ephemeral_secret"] = fixed(f"{label} e_J").hex()
    else:
        inputs["typed"] = str(code)
        inputs["joiner_pake_scalar"] = scalar(f"{label} y_B").hex()
    if approve:
        request = Request(
            device=joiner_device.public,
            name=inputs["request"]["name"],
            proof=bytes.fromhex(inputs["request"]["proof"]),
        )
        welcome = build_welcome(
            inviter=inviter_device,
            space=space,
            purpose=purpose,
            request=request,
            relay=RELAY,
            epoch_key=fixed(f"{label} epoch key"),
            ephemeral_secret=fixed(f"{label} envelope ephemeral"),
        )
        inputs["welcome"] = {
            "space": space.hex(),
            "relay": RELAY,
            "heads": [[h.device.hex(), h.seq, h.id.hex()] for h in welcome.heads],
            "envelopes": [item.hex() for item in welcome.envelopes],
            "added": welcome.added.hex(),
        }
        if private == "linked":
            part = build_private_part(
                inviter=inviter_device,
                private=private_space,
                device=joiner_device.public,
                proof=private_proof,
                epoch_key=fixed(f"{label} private epoch key"),
                ephemeral_secret=fixed(f"{label} private envelope ephemeral"),
            )
            inputs["welcome"]["private"] = _private_fields(part)
    return inputs


def session_cases() -> list[dict[str, Any]]:
    specs = [
        ("QR code, partner pairing, approved", "qr", Purpose.PARTNER, True),
        ("QR code, self pairing, approved", "qr", Purpose.SELF, True),
        ("typed code, partner pairing, approved", "code", Purpose.PARTNER, True),
        ("typed code, self pairing, declined", "code", Purpose.SELF, False),
    ]
    cases = []
    for name, mode, purpose, approve in specs:
        case: dict[str, Any] = {
            "name": name,
            "inputs": session_inputs(name, mode=mode, purpose=purpose, approve=approve),
        }
        case["expect"] = run_session(case)
        cases.append(case)
    wrong = "typed code with one wrong word: the inviter refuses the hello"
    inputs = session_inputs(wrong, mode="code", purpose=Purpose.PARTNER, approve=True)
    words = inputs["typed"].split("-")
    words[2] = WORDS[(WORDS.index(words[2]) + 1) % len(WORDS)]
    inputs["typed"] = "-".join(words)
    case = {"name": wrong, "inputs": inputs}
    case["expect"] = run_session(case)
    cases.append(case)
    cases.extend(private_session_cases())
    return cases


def private_session_cases() -> list[dict[str, Any]]:
    """Self pairings that link the member's private space (SPEC.md 11.12), and welcomes
    or requests that get it wrong, each refused where and how 11.12 says."""
    cases: list[dict[str, Any]] = []

    def add(name: str, inputs: dict[str, Any]) -> None:
        case: dict[str, Any] = {"name": name, "inputs": inputs}
        case["expect"] = run_session(case)
        cases.append(case)

    name = "QR code, self pairing that links the private space, approved"
    add(name, session_inputs(name, mode="qr", purpose=Purpose.SELF, approve=True, private="linked"))
    name = "typed code, self pairing: the private space offered, the joiner leaves it out"
    add(
        name,
        session_inputs(name, mode="code", purpose=Purpose.SELF, approve=True, private="offered"),
    )

    name = "the private space's proof is bound to the shared space: the inviter refuses it"
    inputs = session_inputs(name, mode="qr", purpose=Purpose.SELF, approve=True, private="linked")
    inputs["request"]["private_proof"] = inputs["request"]["proof"]
    add(name, inputs)

    name = "the welcome leaves out the private space the joiner asked for"
    inputs = session_inputs(name, mode="qr", purpose=Purpose.SELF, approve=True, private="linked")
    del inputs["welcome"]["private"]
    add(name, inputs)

    name = "the welcome adds the device to the private space with the shared space's proof"
    inputs = session_inputs(name, mode="code", purpose=Purpose.SELF, approve=True, private="linked")
    inviter = DeviceKey.generate(fixed(f"{name} inviter device"))
    part = build_private_part(
        inviter=inviter,
        private=bytes.fromhex(inputs["offer"]["private"]),
        device=bytes.fromhex(inputs["request"]["device"]),
        proof=bytes.fromhex(inputs["request"]["proof"]),
        epoch_key=fixed(f"{name} private epoch key"),
        ephemeral_secret=fixed(f"{name} private envelope ephemeral"),
    )
    inputs["welcome"]["private"] = _private_fields(part)
    add(name, inputs)

    name = "the welcome's private entry is written in the shared space"
    inputs = session_inputs(name, mode="qr", purpose=Purpose.SELF, approve=True, private="linked")
    inputs["welcome"]["private"]["added"] = inputs["welcome"]["added"]
    add(name, inputs)

    name = "the welcome's private key envelope is for the shared space"
    inputs = session_inputs(name, mode="qr", purpose=Purpose.SELF, approve=True, private="linked")
    inputs["welcome"]["private"]["envelopes"] = inputs["welcome"]["envelopes"]
    add(name, inputs)
    return cases


def build() -> dict[str, dict[str, Any]]:
    """Every pairing vector file, by file name."""
    return {
        "pairing-code.json": {
            "kind": "pairing-code",
            "description": (
                "Typed codes (SPEC.md 11.3): the word list; codes made from a nameplate and "
                "4 secret bytes, with their SPAKE2 password; typed text and the code it "
                "reads as; typed text that must be refused with the given error code."
            ),
            "cases": code_cases(),
        },
        "pairing-uri.json": {
            "kind": "pairing-uri",
            "description": (
                "QR invite URIs (SPEC.md 11.2): fields and their one canonical URI, and "
                "URIs a parser must refuse at time `now` with the given error code."
            ),
            "cases": uri_cases(),
        },
        "pairing-message.json": {
            "kind": "pairing-message",
            "description": (
                "Sealed plaintexts (SPEC.md 11.6, 11.12): offers, requests and welcomes "
                "with the private space of self pairing, which must decode and encode back "
                "to the same bytes, and plaintexts that must be refused with the given code."
            ),
            "cases": message_cases(),
        },
        "pairing-session.json": {
            "kind": "pairing-session",
            "description": (
                "Whole pairings (SPEC.md 11.4 to 11.8) with every random value fixed: the "
                "derived keys, the SAS and every message byte for byte, or where the run "
                "fails and with which error code."
            ),
            "cases": session_cases(),
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, document in build().items():
        (VECTORS / name).write_text(render(document), encoding="utf-8")
        print(f"wrote {VECTORS / name}")


if __name__ == "__main__":
    main()
