"""Vector checks for pairing (SPEC.md section 12.x, files ``pairing-*.json``).

Four kinds:

* ``pairing-code``: the word list, typed codes made from a nameplate and 4 secret bytes,
  codes as a person might type them, and typed text that must be refused.
* ``pairing-uri``: QR invite URIs built from their fields, and URIs a parser must refuse
  with a given error code at a given time.
* ``pairing-message``: the plaintext of a sealed message (an ``offer``, ``request`` or
  ``welcome``, with or without the private space of self pairing), which must decode
  and encode back to the same bytes, or be refused with a given error code.
* ``pairing-session``: a whole pairing with every random value fixed. The checker runs
  both machines and compares every derived value and every message byte for byte, or
  checks that the run fails where and how the case says.

Bytes are lowercase hex in every case.
"""

from __future__ import annotations

from typing import Any

import spake2

from protocol.checks import Case, Checker, VectorMismatch, expect
from protocol.entry import SeenHead
from protocol.errors import AccordError
from protocol.pairing import Invite, Inviter, Joiner
from protocol.pairing_codes import (
    WORDS,
    InviteUri,
    Purpose,
    TypedCode,
    parse_code,
    parse_invite_uri,
)
from protocol.pairing_keys import (
    SPAKE_ID_INVITER,
    SPAKE_ID_JOINER,
    SessionKeys,
    code_root,
    code_transcript,
    qr_root,
    qr_transcript,
    spake_entropy,
    transcript_hash,
    x25519_public,
    x25519_shared,
)
from protocol.pairing_messages import (
    Hello,
    Offer,
    Pake,
    PrivateWelcome,
    Request,
    Welcome,
    decode_clear,
    decode_inner,
    encode_message,
)


def _hex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _error_code(action: Any) -> str | None:
    try:
        action()
    except AccordError as error:
        return error.code.value
    return None


# -- pairing-code --------------------------------------------------------------------------------


def check_code(case: Case) -> None:
    if "words" in case:
        expect(list(WORDS) == case["words"], "the word list differs")
        return
    if "error" in case:
        got = _error_code(lambda: parse_code(case["input"]))
        expect(got == case["error"], f"expected error {case['error']}, got {got}")
        return
    if "secret" in case:
        code = TypedCode.from_secret(
            nameplate=case["nameplate"], secret=bytes.fromhex(case["secret"])
        )
        expect(str(code) == case["code"], f"code {code} differs")
        expect(code.password.hex() == case["password"], "the SPAKE2 password differs")
    text: str = case["input"] if "input" in case else case["code"]
    parsed = parse_code(text)
    expect(str(parsed) == case["code"], f"parsed code {parsed} differs")


# -- pairing-uri ----------------------------------------------------------------------------------


def check_uri(case: Case) -> None:
    if "error" in case:
        got = _error_code(lambda: parse_invite_uri(case["uri"], now=case["now"]))
        expect(got == case["error"], f"expected error {case['error']}, got {got}")
        return
    fields = case["fields"]
    invite = InviteUri(
        relay=fields["relay"],
        channel=fields["channel"],
        key=bytes.fromhex(fields["key"]),
        secret=bytes.fromhex(fields["secret"]),
        expires=fields["expires"],
        purpose=Purpose(fields["purpose"]),
    )
    expect(invite.to_uri() == case["uri"], "the encoded URI differs")
    expect(parse_invite_uri(case["uri"], now=case["now"]) == invite, "the parsed URI differs")


# -- pairing-message ------------------------------------------------------------------------------


def check_message(case: Case) -> None:
    data = bytes.fromhex(case["message"])
    if "error" in case:
        got = _error_code(lambda: decode_inner(data))
        expect(got == case["error"], f"expected error {case['error']}, got {got}")
        return
    message = decode_inner(data)
    expect(message.TYPE.value == case["type"], f"decoded a {message.TYPE.value}")
    expect(encode_message(message) == data, "the message does not encode back to its bytes")


# -- pairing-session ------------------------------------------------------------------------------


def _offer(fields: dict[str, Any]) -> Offer:
    return Offer(
        purpose=Purpose(fields["purpose"]),
        space=bytes.fromhex(fields["space"]),
        inviter=bytes.fromhex(fields["inviter"]),
        member=_hex(fields["member"]),
        name=fields["name"],
        private=_hex(fields.get("private")),
    )


def _request(fields: dict[str, Any]) -> Request:
    return Request(
        device=bytes.fromhex(fields["device"]),
        name=fields["name"],
        proof=bytes.fromhex(fields["proof"]),
        private_proof=_hex(fields.get("private_proof")),
    )


def _heads(items: list[list[Any]]) -> tuple[SeenHead, ...]:
    return tuple(
        SeenHead(device=bytes.fromhex(device), seq=seq, id=bytes.fromhex(head))
        for device, seq, head in items
    )


def _welcome(fields: dict[str, Any]) -> Welcome:
    private = fields.get("private")
    return Welcome(
        space=bytes.fromhex(fields["space"]),
        relay=fields["relay"],
        heads=_heads(fields["heads"]),
        envelopes=tuple(bytes.fromhex(item) for item in fields["envelopes"]),
        added=bytes.fromhex(fields["added"]),
        private=None
        if private is None
        else PrivateWelcome(
            space=bytes.fromhex(private["space"]),
            heads=_heads(private["heads"]),
            envelopes=tuple(bytes.fromhex(item) for item in private["envelopes"]),
            added=bytes.fromhex(private["added"]),
        ),
    )


def _derived(case: Case, invite: Invite, hello: Hello, pake_inviter: bytes) -> dict[str, str]:
    """The key schedule's values, computed step by step rather than by the machines."""
    inputs = case["inputs"]
    if hello.key is not None:
        transcript = qr_transcript(
            relay=invite.relay,
            channel=invite.channel,
            expires=invite.expires,
            purpose=invite.purpose,
            inviter_key=x25519_public(invite.ephemeral_secret),
            joiner_key=hello.key,
        )
        shared = x25519_shared(invite.ephemeral_secret, hello.key)
        root = qr_root(shared=shared, secret=invite.secret, transcript=transcript)
        extra = {"shared": shared.hex()}
    else:
        if hello.pake is None:
            raise VectorMismatch("a code hello without a SPAKE2 message")
        side = spake2.SPAKE2_B(
            parse_code(inputs["typed"]).password,
            idA=SPAKE_ID_INVITER,
            idB=SPAKE_ID_JOINER,
            entropy_f=spake_entropy(bytes.fromhex(inputs["joiner_pake_scalar"])),
        )
        side.start()
        spake_key = bytes(side.finish(pake_inviter))
        transcript = code_transcript(
            channel=invite.channel,
            nameplate=parse_code(inputs["typed"]).nameplate,
            pake_inviter=pake_inviter,
            pake_joiner=hello.pake,
        )
        root = code_root(spake_key=spake_key, transcript=transcript)
        extra = {"spake_key": spake_key.hex()}
    keys = SessionKeys.derive(root=root, transcript=transcript)
    return {
        **extra,
        "transcript": transcript.hex(),
        "transcript_hash": transcript_hash(transcript).hex(),
        "root": root.hex(),
        "mac": keys.mac.hex(),
        "inviter_to_joiner": keys.inviter_to_joiner.hex(),
        "joiner_to_inviter": keys.joiner_to_inviter.hex(),
        "sas": keys.sas,
    }


def run_session(case: Case) -> dict[str, Any]:
    """Run a ``pairing-session`` case's inputs; return what the case's ``expect`` holds.

    A failing run returns ``{"error": {"at": MESSAGE TYPE, "side": ..., "code": ...}}``.
    """
    inputs = case["inputs"]
    invite = Invite(
        relay=inputs["relay"],
        channel=inputs["channel"],
        nameplate=inputs["nameplate"],
        purpose=Purpose(inputs["purpose"]),
        expires=inputs["expires"],
        ephemeral_secret=bytes.fromhex(inputs["inviter_ephemeral_secret"]),
        secret=bytes.fromhex(inputs["secret"]),
        code_secret=bytes.fromhex(inputs["code_secret"]),
    )
    now = inputs["now"]
    inviter = Inviter(
        invite,
        _offer(inputs["offer"]),
        pake_scalar=bytes.fromhex(inputs["inviter_pake_scalar"]),
    )
    if inputs["mode"] == "qr":
        joiner = Joiner.from_invite(
            parse_invite_uri(invite.uri.to_uri(), now=now),
            ephemeral_secret=bytes.fromhex(inputs["joiner_ephemeral_secret"]),
        )
    else:
        joiner = Joiner.from_code(
            parse_code(inputs["typed"]),
            channel=invite.channel,
            pake_scalar=bytes.fromhex(inputs["joiner_pake_scalar"]),
        )
    result: dict[str, Any] = {"uri": invite.uri.to_uri(), "code": str(invite.code)}
    messages: list[dict[str, str]] = []
    result["messages"] = messages

    def post(side: str, kind: str, data: bytes) -> None:
        messages.append({"from": side, "type": kind, "bytes": data.hex()})

    class _Stop(Exception):
        """A side refused a message: the run ends there, as the case expects."""

    def deliver(side: str, kind: str, data: bytes) -> None:
        """Post ``data`` from ``side`` and have the other side receive it."""
        messages.append({"from": side, "type": kind, "bytes": data.hex()})
        receiver, name = (joiner, "joiner") if side == "inviter" else (inviter, "inviter")
        try:
            receiver.receive(data, now=now)
        except AccordError as error:
            result["error"] = {"at": kind, "side": name, "code": error.code.value}
            raise _Stop from None

    try:
        pake = inviter.start()
        deliver("inviter", "pake", pake)
        hello_bytes = joiner.send_hello(now=now)
        hello = decode_clear(hello_bytes)
        if not isinstance(hello, Hello):
            raise VectorMismatch("the joiner's second message is not a hello")
        deliver("joiner", "hello", hello_bytes)
        inviter_pake = decode_clear(pake)
        if not isinstance(inviter_pake, Pake):
            raise VectorMismatch("the inviter's first message is not a pake")
        result.update(_derived(case, invite, hello, inviter_pake.pake))
        deliver("inviter", "offer", inviter.send_offer())
        deliver("joiner", "request", joiner.send_request(_request(inputs["request"])))
        expect(inviter.sas == joiner.sas, "the two sides' SAS differ")
        if inputs["welcome"] is None:
            deliver("inviter", "decline", inviter.decline())
        else:
            deliver("inviter", "welcome", inviter.approve(_welcome(inputs["welcome"])))
            deliver("joiner", "done", joiner.send_done())
    except _Stop:
        pass
    result["states"] = [inviter.state.value, joiner.state.value]
    return result


def check_session(case: Case) -> None:
    got = run_session(case)
    want = case["expect"]
    for key, value in want.items():
        if key == "messages":
            for index, (mine, theirs) in enumerate(zip(got["messages"], value, strict=False)):
                expect(mine == theirs, f"message {index} ({theirs.get('type')}) differs")
            expect(len(got["messages"]) == len(value), "the number of messages differs")
        else:
            expect(got.get(key) == value, f"{key} differs: got {got.get(key)!r}")
    expect(set(got) == set(want), f"the case expects {sorted(want)}, the run gave {sorted(got)}")


CHECKERS: dict[str, Checker] = {
    "pairing-code": check_code,
    "pairing-uri": check_uri,
    "pairing-message": check_message,
    "pairing-session": check_session,
}
