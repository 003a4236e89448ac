import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidVerificationKey,
    SignatureError,
    load_verification_key,
    verify_signature,
)
from tests.data import load_test_data_json

# SendGrid's own vectors (tests/data/README.md says where each comes from): the canonical one
# shipped byte-identical by the official SDKs, the nodejs SDK's multi-event one (one CRLF between
# events and one at the end), and the SDKs' negative-case key and signature. Payloads are the exact
# bytes SendGrid signs, compact JSON plus the trailing CRLF.
VECTORS = load_test_data_json("signature_vectors.json")
SG_PUBLIC_KEY: str = VECTORS["canonical"]["public_key"]
SG_SIGNATURE: str = VECTORS["canonical"]["signature"]
SG_TIMESTAMP: str = VECTORS["canonical"]["timestamp"]
SG_PAYLOAD: bytes = VECTORS["canonical"]["payload"].encode()
SG_MULTI_PUBLIC_KEY: str = VECTORS["multi_event"]["public_key"]
SG_MULTI_SIGNATURE: str = VECTORS["multi_event"]["signature"]
SG_MULTI_TIMESTAMP: str = VECTORS["multi_event"]["timestamp"]
SG_MULTI_PAYLOAD: bytes = VECTORS["multi_event"]["payload"].encode()
SG_OTHER_PUBLIC_KEY: str = VECTORS["other_key"]["public_key"]
SG_OTHER_SIGNATURE: str = VECTORS["other_key"]["signature"]

NO_MATCH = "signature does not match the body and timestamp"
NOW = 1_700_000_000.0


def _sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    der = private_key.sign(timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode("ascii")


def _spki_b64(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def public_key(private_key: ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePublicKey:
    return load_verification_key(_spki_b64(private_key))


def test_header_names_match_sendgrid() -> None:
    assert SIGNATURE_HEADER == "X-Twilio-Email-Event-Webhook-Signature"
    assert TIMESTAMP_HEADER == "X-Twilio-Email-Event-Webhook-Timestamp"


# --- SendGrid's canonical vectors -------------------------------------------------------------


def test_canonical_vector_verifies() -> None:
    key = load_verification_key(SG_PUBLIC_KEY)
    assert isinstance(key.curve, ec.SECP256R1)
    verify_signature(key, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP)


def test_canonical_multi_event_vector_verifies() -> None:
    key = load_verification_key(SG_MULTI_PUBLIC_KEY)
    verify_signature(key, SG_MULTI_PAYLOAD, SG_MULTI_SIGNATURE, SG_MULTI_TIMESTAMP)


def test_canonical_vector_without_tolerance_ignores_age() -> None:
    # The vector is from 2020; the default (like every official SDK) does not check freshness.
    key = load_verification_key(SG_PUBLIC_KEY)
    verify_signature(key, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, now=NOW)
    with pytest.raises(SignatureError, match="s old, beyond the configured tolerance of 300 s"):
        verify_signature(
            key, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, tolerance_seconds=300, now=NOW
        )


@pytest.mark.parametrize(
    ("public_key_text", "body", "signature", "timestamp", "message"),
    [
        pytest.param(SG_OTHER_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, NO_MATCH,
                     id="wrong-public-key"),
        pytest.param(SG_PUBLIC_KEY, b"payload", SG_SIGNATURE, SG_TIMESTAMP, NO_MATCH,
                     id="wrong-payload"),
        pytest.param(SG_PUBLIC_KEY, b"this is not valid payload for the given signature",
                     SG_SIGNATURE, SG_TIMESTAMP, NO_MATCH, id="wrong-payload-go"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD.replace(b"dropped", b"Dropped"), SG_SIGNATURE,
                     SG_TIMESTAMP, NO_MATCH, id="one-byte-altered"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD.removesuffix(b"\r\n"), SG_SIGNATURE,
                     SG_TIMESTAMP, NO_MATCH, id="trailing-crlf-dropped"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_OTHER_SIGNATURE, SG_TIMESTAMP, NO_MATCH,
                     id="corrupted-signature"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "1600112503", NO_MATCH,
                     id="other-timestamp"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "timestamp",
                     "timestamp header is not a unix time in seconds", id="non-numeric-timestamp"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "invalid timestamp",
                     "timestamp header is not a unix time in seconds", id="non-numeric-go"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "１６００１１２５０２",
                     "timestamp header is not a unix time in seconds", id="non-ascii-digits"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "1600112502000",
                     "timestamp header is not a unix time in seconds", id="milliseconds"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, "",
                     f"missing {TIMESTAMP_HEADER} header", id="empty-timestamp"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE, None,
                     f"missing {TIMESTAMP_HEADER} header", id="missing-timestamp"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, None, SG_TIMESTAMP,
                     f"missing {SIGNATURE_HEADER} header", id="missing-signature"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, "", SG_TIMESTAMP,
                     f"missing {SIGNATURE_HEADER} header", id="empty-signature"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE + "causing failure", SG_TIMESTAMP,
                     "signature header is not valid base64", id="junk-after-padding-go"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, SG_SIGNATURE + "AAAA", SG_TIMESTAMP,
                     "signature header is not valid base64", id="base64-after-padding"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, "é" + SG_SIGNATURE, SG_TIMESTAMP,
                     "signature header is not valid base64", id="non-ascii-signature"),
        pytest.param(SG_PUBLIC_KEY, SG_PAYLOAD, base64.b64encode(b"not der").decode(),
                     SG_TIMESTAMP, "signature header is not a DER-encoded ECDSA signature",
                     id="not-der"),
    ],
)  # fmt: skip
def test_canonical_vector_negative_cases(
    public_key_text: str, body: bytes, signature: str | None, timestamp: str | None, message: str
) -> None:
    key = load_verification_key(public_key_text)
    with pytest.raises(SignatureError) as excinfo:
        verify_signature(key, body, signature, timestamp)
    assert message in str(excinfo.value)


def test_junk_after_padding_would_pass_a_lenient_decoder() -> None:
    # Proves the strict-base64 cases above test something: lenient decoding yields the real DER.
    junk = SG_SIGNATURE + "causing failure"
    assert base64.b64decode(junk) == base64.b64decode(SG_SIGNATURE)
    with pytest.raises(SignatureError, match="not valid base64"):
        verify_signature(load_verification_key(SG_PUBLIC_KEY), SG_PAYLOAD, junk, SG_TIMESTAMP)


def test_reserialized_body_does_not_verify() -> None:
    # Same events, different bytes: only the raw body verifies.
    reserialized = json.dumps(json.loads(SG_PAYLOAD)).encode()
    assert json.loads(reserialized) == json.loads(SG_PAYLOAD)
    with pytest.raises(SignatureError, match=NO_MATCH):
        verify_signature(
            load_verification_key(SG_PUBLIC_KEY), reserialized, SG_SIGNATURE, SG_TIMESTAMP
        )


# --- Bodies signed with a key pair generated here ---------------------------------------------


def test_fresh_key_pair_round_trip(
    private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
) -> None:
    body = b'[{"event":"delivered","email":"a@example.com"}]\r\n'
    timestamp = str(int(NOW))
    signature = _sign(private_key, timestamp, body)
    verify_signature(public_key, body, signature, timestamp)
    with pytest.raises(SignatureError, match=NO_MATCH):
        verify_signature(public_key, body + b" ", signature, timestamp)


def test_key_from_another_pair_does_not_verify(private_key: ec.EllipticCurvePrivateKey) -> None:
    other = load_verification_key(_spki_b64(ec.generate_private_key(ec.SECP256R1())))
    body = b"[]"
    with pytest.raises(SignatureError, match=NO_MATCH):
        verify_signature(other, body, _sign(private_key, "1700000000", body), "1700000000")


def test_tolerance_refuses_old_timestamp(
    private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
) -> None:
    body = b"[]\r\n"
    timestamp = str(int(NOW) - 3600)
    signature = _sign(private_key, timestamp, body)
    with pytest.raises(SignatureError) as excinfo:
        verify_signature(public_key, body, signature, timestamp, tolerance_seconds=300, now=NOW)
    assert str(excinfo.value) == (
        "timestamp is 3600 s old, beyond the configured tolerance of 300 s"
    )
    # The same request verifies when no window is configured.
    verify_signature(public_key, body, signature, timestamp, now=NOW)


def test_tolerance_refuses_future_timestamp(
    private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
) -> None:
    body = b"[]\r\n"
    timestamp = str(int(NOW) + 3600)
    signature = _sign(private_key, timestamp, body)
    with pytest.raises(SignatureError, match="3600 s in the future, beyond the configured"):
        verify_signature(public_key, body, signature, timestamp, tolerance_seconds=300, now=NOW)


@pytest.mark.parametrize("offset", [0, -10, 10, -300, 300])
def test_tolerance_accepts_fresh_timestamp(
    private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey, offset: int
) -> None:
    body = b'[{"event":"open"}]\r\n'
    timestamp = str(int(NOW) + offset)
    signature = _sign(private_key, timestamp, body)
    verify_signature(public_key, body, signature, timestamp, tolerance_seconds=300, now=NOW)


def test_forged_stale_request_reports_signature_not_age(
    private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
) -> None:
    timestamp = str(int(NOW) - 3600)
    signature = _sign(private_key, timestamp, b"[]")
    with pytest.raises(SignatureError, match=NO_MATCH):
        verify_signature(public_key, b"[ ]", signature, timestamp, tolerance_seconds=300, now=NOW)


# --- Loading the verification key -------------------------------------------------------------


def test_key_loads_from_pem_and_wrapped_base64(private_key: ec.EllipticCurvePrivateKey) -> None:
    expected = private_key.public_key().public_numbers()
    pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    b64 = _spki_b64(private_key)
    wrapped = f"  {b64[:40]}\n{b64[40:]}\r\n"
    for text in (pem, "\n" + pem + "\n", wrapped):
        assert load_verification_key(text).public_numbers() == expected


def test_key_on_another_curve_is_refused() -> None:
    text = _spki_b64(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(
        InvalidVerificationKey, match="curve secp384r1, but SendGrid signs with P-256"
    ):
        load_verification_key(text)


def test_rsa_key_is_refused() -> None:
    text = _spki_b64(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(InvalidVerificationKey, match="not an elliptic-curve key"):
        load_verification_key(text)


def test_ed25519_key_is_refused() -> None:
    der = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidVerificationKey, match="not an elliptic-curve key"):
        load_verification_key(base64.b64encode(der).decode())


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("not a key", id="words"),
        pytest.param(SG_PUBLIC_KEY + "corrupting the public key", id="junk-after-padding-go"),
        pytest.param(SG_PUBLIC_KEY[:-8], id="truncated"),
        pytest.param(base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), id="der-not-spki"),
        pytest.param("MFkw€", id="non-ascii"),
        pytest.param("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", id="bad-pem"),
    ],
)
def test_garbage_key_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidVerificationKey, match="not a base64 DER \\(or PEM\\) public key"):
        load_verification_key(text)


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_key_is_refused(text: str) -> None:
    with pytest.raises(InvalidVerificationKey, match="verification key is empty"):
        load_verification_key(text)


def test_invalid_verification_key_is_a_value_error() -> None:
    assert issubclass(InvalidVerificationKey, ValueError)
