from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs import Envelope, HttpLimits, OutputContext, Target, TargetPolicy, output_class
from tests.outputs.conftest import message_for, settings_for
from tests.receivers import start_smtp


def email_context(tmp_path: Path, **settings: object) -> OutputContext:
    return OutputContext(
        settings=settings_for(tmp_path, **settings),
        policy=TargetPolicy(),
        limits=HttpLimits(total_timeout=5),
    )


def smtp_output(tmp_path: Path, port: int, **settings: object):
    """The email output, sending to the test SMTP server on ``port`` (no TLS)."""
    return output_class("email")(
        email_context(
            tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", **settings
        )
    )


def parse(data: bytes):
    return message_from_bytes(data, policy=default_policy)


async def test_email_structure_and_headers(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, public_url="https://briefing.example.org")
    target = await output.validate(Target("email", "Reader@Example.org"))
    assert target.address == "Reader@example.org"
    fr = message_for(renderer, digest.model_copy(update={"locale": "fr"}), "email")
    receipt = await output.send(target, fr, envelope=Envelope("dlv_42", unsubscribe_token="tok123"))
    await output.aclose()
    assert receipt.status == "250"
    (envelope,) = handler.messages
    assert envelope.mail_from == "briefing@example.org" and envelope.rcpt_tos == [
        "Reader@example.org"
    ]
    mail = parse(envelope.original_content)
    assert mail.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in mail.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert mail["Subject"] == "US–Russia–Ukraine peace talks — mardi 2 décembre 2025"
    assert mail["From"] == "Briefing <briefing@example.org>" and mail["To"] == "Reader@example.org"
    assert abs(mail["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=1)
    assert mail["Message-ID"] == "<dlv_42@example.org>"
    assert mail["List-Id"] == "Peace talks briefing <briefing.example.org>"
    assert mail["List-Unsubscribe"] == (
        "<https://briefing.example.org/unsubscribe/tok123>, "
        "<mailto:briefing@example.org?subject=unsubscribe%20tok123>"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = (p.get_content() for p in mail.iter_parts())
    assert "Pokrovsk" in text and "<!DOCTYPE html>" in html


async def test_one_connection_is_reused(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port)
    message = message_for(renderer, digest, "email")
    for n in range(5):
        await output.send(Target("email", f"r{n}@example.org"), message, envelope=Envelope(f"d{n}"))
    await output.aclose()
    assert len(handler.messages) == 5 and handler.sessions == 1
    assert len({parse(m.original_content)["Message-ID"] for m in handler.messages}) == 5


async def test_no_one_click_without_public_url(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port)
    await output.send(
        Target("email", "r@example.org"),
        message_for(renderer, digest, "email"),
        envelope=Envelope("d", unsubscribe_token="t"),
    )
    await output.aclose()
    mail = parse(handler.messages[0].original_content)
    assert mail["List-Unsubscribe"] == "<mailto:briefing@example.org?subject=unsubscribe%20t>"
    assert mail["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("451 4.3.0 Try again later", RetryableDeliveryError),
        ("550 5.1.1 No such user", PermanentDeliveryError),
    ],
)
async def test_smtp_answers_are_classified(tmp_path, smtp, renderer, digest, answer, error) -> None:
    port, handler = smtp
    handler.refusals["refuse"] = answer
    output = smtp_output(tmp_path, port)
    with pytest.raises(error, match=answer.split()[0]):
        await output.send(
            Target("email", "refuse@example.org"),
            message_for(renderer, digest, "email"),
            envelope=Envelope("d"),
        )
    # the connection still works for the next reader
    await output.send(
        Target("email", "ok@example.org"),
        message_for(renderer, digest, "email"),
        envelope=Envelope("e"),
    )
    await output.aclose()
    assert [m.rcpt_tos for m in handler.messages] == [["ok@example.org"]]


async def test_unreachable_smtp_is_retryable(tmp_path, renderer, digest) -> None:
    from tests.receivers import free_port

    output = smtp_output(tmp_path, free_port())
    with pytest.raises(RetryableDeliveryError, match="SMTP connection failed"):
        await output.send(
            Target("email", "r@example.org"),
            message_for(renderer, digest, "email"),
            envelope=Envelope("d"),
        )


def make_key_and_cert(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, key_path, cert_path


async def test_starttls_with_auth(tmp_path, renderer, digest) -> None:
    _, key_path, cert_path = make_key_and_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    seen: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret")

    controller, handler = start_smtp(
        tls_context=tls, require_starttls=True, authenticator=authenticator, auth_require_tls=True
    )
    try:
        output = output_class("email")(
            email_context(
                tmp_path,
                smtp_host="127.0.0.1",
                smtp_port=controller.port,
                smtp_security="starttls",
                smtp_username="bot",
                smtp_password="s3cret",
                smtp_ca_file=cert_path,
            )
        )
        await output.send(
            Target("email", "r@example.org"),
            message_for(renderer, digest, "email"),
            envelope=Envelope("d"),
        )
        await output.aclose()
    finally:
        controller.stop()
    assert seen == [("bot", "s3cret")] and len(handler.messages) == 1


async def test_dkim_signature_verifies(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    key, key_path, _ = make_key_and_cert(tmp_path)
    output = smtp_output(
        tmp_path,
        port,
        dkim_domain="example.org",
        dkim_selector="brief",
        dkim_private_key=key_path,
        public_url="https://briefing.example.org",
    )
    await output.send(
        Target("email", "r@example.org"),
        message_for(renderer, digest, "email"),
        envelope=Envelope("d", unsubscribe_token="t"),
    )
    await output.aclose()
    data = handler.messages[0].original_content
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"brief._domainkey.example.org."
        return record

    assert dkim.verify(data, dnsfunc=dns)
    signature = parse(data)["DKIM-Signature"]
    assert "c=relaxed/relaxed" in signature.replace(" ", "")
    signed = (
        signature.replace(" ", "").replace("\n", "").split("h=")[1].split(";")[0].lower().split(":")
    )
    for header in [
        "from",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ]:
        assert header in signed
    assert not dkim.verify(data.replace(b"Pokrovsk", b"Kharkiv", 1), dnsfunc=dns)


async def test_without_smtp_host_messages_are_eml_files(tmp_path, renderer, digest) -> None:
    output = output_class("email")(email_context(tmp_path))
    receipt = await output.send(
        Target("email", "r@example.org"),
        message_for(renderer, digest, "email"),
        envelope=Envelope("dlv_file"),
    )
    path = Path(receipt.answer)
    assert (
        receipt.status == "written" and path.parent == tmp_path / "mail" and path.suffix == ".eml"
    )
    mail = parse(path.read_bytes())
    assert mail["Message-ID"] == "<dlv_file@example.org>" and mail.is_multipart()


@pytest.mark.parametrize(
    "address",
    ["not-an-address", "a@b", "reader@example.org\r\nBcc: victim@example.org", "two@@example.org"],
)
async def test_bad_addresses_are_refused(tmp_path, address) -> None:
    with pytest.raises(TargetError):
        await output_class("email")(email_context(tmp_path)).validate(Target("email", address))


async def test_crlf_in_header_settings_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="line break"):
        output_class("email")(
            email_context(tmp_path, mail_from="Bot <bot@example.org>\r\nBcc: x@example.org")
        )


async def test_crlf_in_state_text_cannot_inject_headers(tmp_path, renderer, digest) -> None:
    evil = digest.model_copy(update={"story": "Briefing\r\nBcc: victim@example.org"})
    output = output_class("email")(email_context(tmp_path))
    with pytest.raises(PermanentDeliveryError, match="line break"):
        await output.send(
            Target("email", "r@example.org"),
            message_for(renderer, evil, "email"),
            envelope=Envelope("d"),
        )


async def test_concurrent_sends_share_a_bounded_pool_of_connections(
    tmp_path, smtp, renderer, digest
) -> None:
    import asyncio

    port, handler = smtp
    output = smtp_output(tmp_path, port, smtp_connections=2)
    message = message_for(renderer, digest, "email")
    await asyncio.gather(
        *(
            output.send(Target("email", f"r{n}@example.org"), message, envelope=Envelope(f"d{n}"))
            for n in range(12)
        )
    )
    await output.aclose()
    assert len(handler.messages) == 12 and handler.sessions == 2
