from __future__ import annotations

import asyncio
import contextlib
import ssl
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import aiosmtplib
import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetError,
)
from bot.outputs import (
    Envelope,
    HttpLimits,
    Message,
    OutputContext,
    Target,
    TargetPolicy,
    output_class,
)
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
    target = await output.validate(Target("email", " mailto:Reader@Example.org\n"))
    assert target.address == "Reader@Example.org"  # as typed; the domain is folded on the wire
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


async def test_a_refused_login_is_the_operators_problem(tmp_path, renderer, digest) -> None:
    """Wrong SMTP credentials are a setting to fix, not a reader's failure: a ConfigError,
    which the worker retries without counting it against the subscription."""
    from aiosmtpd.smtp import AuthResult

    refused = AuthResult(success=False, handled=False, message="535 5.7.8 Bad credentials")
    controller, handler = start_smtp(authenticator=lambda *args: refused, auth_require_tls=False)
    try:
        output = output_class("email")(
            email_context(
                tmp_path,
                smtp_host="127.0.0.1",
                smtp_port=controller.port,
                smtp_security="none",
                smtp_username="bot",
                smtp_password="wrong",
            )
        )
        with pytest.raises(ConfigError, match=r"refused the login \(BRIEFING_SMTP_USERNAME"):
            await output.send(
                Target("email", "r@example.org"),
                message_for(renderer, digest, "email"),
                envelope=Envelope("d"),
            )
        await output.aclose()
    finally:
        controller.stop()
    assert handler.messages == []


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
    """A subject that would hold a line break is refused as it is rendered (the operator's
    mistake, caught at start by the worker's check); a message made some other way with
    one is refused by the output."""
    evil = digest.model_copy(update={"story": "Briefing\r\nBcc: victim@example.org"})
    with pytest.raises(ConfigError, match=r"email.subject.j2 renders a line break"):
        message_for(renderer, evil, "email")
    message = message_for(renderer, digest, "email")
    forged = Message(
        digest, {**message.bodies, "email_subject": "Briefing\r\nBcc: victim@example.org"}
    )
    output = output_class("email")(email_context(tmp_path))
    with pytest.raises(PermanentDeliveryError, match="line break"):
        await output.send(Target("email", "r@example.org"), forged, envelope=Envelope("d"))


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


# Internationalised addresses: the domain goes out in IDNA form, a Unicode local part only
# with SMTPUTF8, and no address is ever written as an RFC 2047 encoded-word.


@pytest.fixture
def smtp_ascii():
    """A real SMTP server that does not offer SMTPUTF8."""
    controller, handler = start_smtp(smtputf8=False)
    yield controller.port, handler
    controller.stop()


def header_line(data: bytes, name: bytes) -> bytes:
    """The raw header line ``name`` of a message (before the blank line)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    (line,) = [line for line in head.split(b"\r\n") if line.startswith(name + b": ")]
    return line


@pytest.mark.parametrize("typed", ["a@exämple.org", "a@EXÄMPLE.org", "a@xn--exmple-cua.org"])
async def test_a_unicode_domain_goes_out_in_idna_form(
    tmp_path, smtp_ascii, renderer, digest, typed
) -> None:
    port, handler = smtp_ascii
    output = smtp_output(tmp_path, port)
    target = await output.validate(Target("email", typed))
    assert target.address == typed
    await output.send(target, message_for(renderer, digest, "email"), envelope=Envelope("d"))
    await output.aclose()
    (received,) = handler.messages
    assert received.rcpt_tos == ["a@xn--exmple-cua.org"] and not received.smtp_utf8
    data = received.original_content
    assert header_line(data, b"To") == b"To: a@xn--exmple-cua.org"
    mail = parse(data)
    (address,) = mail["To"].addresses
    assert (address.username, address.domain) == ("a", "xn--exmple-cua.org")
    assert not mail["To"].defects and mail.get_content_type() == "multipart/alternative"


async def test_a_unicode_local_part_is_sent_with_smtputf8(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port)
    target = await output.validate(Target("email", "usér@exämple.org"))
    assert target.address == "usér@exämple.org"
    message = message_for(renderer, digest, "email")
    receipt = await output.send(target, message, envelope=Envelope("d1"))
    await output.send(Target("email", "plain@example.org"), message, envelope=Envelope("d2"))
    await output.aclose()
    assert receipt.status == "250"
    utf8, plain = handler.messages
    assert utf8.smtp_utf8 and "SMTPUTF8" in [o.upper() for o in utf8.mail_options]
    assert utf8.rcpt_tos == ["usér@xn--exmple-cua.org"]
    line = header_line(utf8.original_content, b"To")
    assert line == "To: usér@xn--exmple-cua.org".encode() and b"=?" not in line
    mail = parse(utf8.original_content)
    assert str(mail["To"]) == "usér@xn--exmple-cua.org"
    assert "Pokrovsk" in mail.get_body(("plain",)).get_content()
    # an ASCII address on the same connection does not ask for SMTPUTF8
    assert not plain.smtp_utf8 and plain.rcpt_tos == ["plain@example.org"]
    assert handler.sessions == 1


async def test_a_unicode_local_part_without_smtputf8_fails_for_good(
    tmp_path, smtp_ascii, renderer, digest
) -> None:
    port, handler = smtp_ascii
    await handler.settled(0)  # the controller's start-up probe
    before = handler.connections
    output = smtp_output(tmp_path, port)
    message = message_for(renderer, digest, "email")
    for attempt in range(3):
        with pytest.raises(PermanentDeliveryError, match="SMTPUTF8") as caught:
            await output.send(
                Target("email", "usér@exämple.org"), message, envelope=Envelope(f"d{attempt}")
            )
        assert "local part" in caught.value.reason
    # no connection per try: the one connection is still usable by the next reader
    assert await handler.settled(1) == 1 and handler.connections == before + 1
    await output.send(Target("email", "ok@example.org"), message, envelope=Envelope("e"))
    assert [m.rcpt_tos for m in handler.messages] == [["ok@example.org"]]
    await output.aclose()
    assert await handler.settled(0) == 0 and handler.connections == before + 1


async def test_validate_keeps_the_address_as_typed(tmp_path) -> None:
    output = output_class("email")(email_context(tmp_path))
    for typed, kept in [
        ("a@xn--exmple-cua.org", "a@xn--exmple-cua.org"),
        ("a@exämple.org", "a@exämple.org"),
        ("  MAILTO:usér@Exämple.org\t", "usér@Exämple.org"),
        ("Some.One+news@Example.ORG", "Some.One+news@Example.ORG"),
    ]:
        assert (await output.validate(Target("email", typed))).address == kept


@pytest.mark.parametrize(
    ("typed", "username", "line"),
    [
        ("a@exämple.org", "a", b"To: a@xn--exmple-cua.org"),
        ("usér@exämple.org", "usér", "To: usér@xn--exmple-cua.org".encode()),
    ],
)
async def test_eml_files_carry_valid_address_headers(
    tmp_path, renderer, digest, typed, username, line
) -> None:
    output = output_class("email")(email_context(tmp_path))
    receipt = await output.send(
        Target("email", typed), message_for(renderer, digest, "email"), envelope=Envelope("d")
    )
    data = Path(receipt.answer).read_bytes()
    assert header_line(data, b"To") == line  # raw (RFC 6532), never an encoded-word
    mail = parse(data)
    (address,) = mail["To"].addresses
    # the parser keeps raw UTF-8 header bytes as surrogates: undo that to compare
    raw_username = address.username.encode("ascii", "surrogateescape").decode()
    assert (raw_username, address.domain) == (username, "xn--exmple-cua.org")
    assert mail["Message-ID"] == "<d@example.org>" and mail.is_multipart()


async def test_a_unicode_sender_domain_goes_out_in_idna_form(
    tmp_path, smtp, renderer, digest
) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, mail_from="Brèves <briefing@exämple.org>")
    await output.send(
        Target("email", "r@example.org"),
        message_for(renderer, digest, "email"),
        envelope=Envelope("d"),
    )
    await output.aclose()
    (received,) = handler.messages
    assert received.mail_from == "briefing@xn--exmple-cua.org"
    mail = parse(received.original_content)
    assert mail["From"] == "Brèves <briefing@xn--exmple-cua.org>"
    assert mail["Message-ID"] == "<d@xn--exmple-cua.org>"
    assert b"@=?" not in header_line(received.original_content, b"From")


async def test_a_unicode_sender_local_part_is_refused_at_start(tmp_path) -> None:
    with pytest.raises(ConfigError, match="ASCII local part"):
        output_class("email")(email_context(tmp_path, mail_from="Brèves <brèves@example.org>"))


class _FailingSMTP(aiosmtplib.SMTP):
    """A real client that talks to the server, then fails as a library bug would."""

    def __init__(self, failures: list[Exception], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.failures = failures

    async def sendmail(self, *args, **kwargs):
        if self.failures:
            await self.noop()
            raise self.failures.pop(0)
        return await super().sendmail(*args, **kwargs)


def failing_output(tmp_path: Path, port: int, failures: list[Exception]):
    class FailingEmailOutput(output_class("email")):
        async def _connect(self):
            smtp = _FailingSMTP(failures, hostname="127.0.0.1", port=port, timeout=5)
            await smtp.connect()
            return smtp

    return FailingEmailOutput(
        email_context(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    )


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range"), PermanentDeliveryError),
        (RuntimeError("unexpected state"), RetryableDeliveryError),
    ],
)
async def test_unexpected_library_errors_are_translated_and_the_connection_closed(
    tmp_path, smtp, renderer, digest, failure, error
) -> None:
    port, handler = smtp
    await handler.settled(0)
    before = handler.connections
    output = failing_output(tmp_path, port, [failure])
    message = message_for(renderer, digest, "email")
    with pytest.raises(error) as caught:
        await output.send(Target("email", "r@example.org"), message, envelope=Envelope("d"))
    assert caught.value.__cause__ is failure
    assert await handler.settled(0) == 0  # closed, not kept for the next reader
    await output.send(Target("email", "r@example.org"), message, envelope=Envelope("e"))
    await output.aclose()
    assert len(handler.messages) == 1 and handler.connections == before + 2


async def test_a_cancelled_send_closes_its_connection(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    await handler.settled(0)
    before = handler.connections
    handler.data_delay = 3.0
    output = smtp_output(tmp_path, port)
    message = message_for(renderer, digest, "email")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            output.send(Target("email", "r@example.org"), message, envelope=Envelope("d")), 0.3
        )
    assert await handler.settled(0) == 0
    handler.data_delay = 0.0
    await output.send(Target("email", "r@example.org"), message, envelope=Envelope("e"))
    await output.aclose()
    assert handler.connections == before + 2


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    address=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda prefix, local, domain: f"{prefix}{local}@{domain}",
            st.sampled_from(["", "mailto:", " "]),
            st.text(max_size=20),
            st.text(max_size=20),
        ),
    )
)
async def test_any_address_input_raises_only_bot_errors(
    tmp_path, renderer, digest, address
) -> None:
    output = output_class("email")(email_context(tmp_path))
    try:
        target = await output.validate(Target("email", address))
    except TargetError:
        target = Target("email", address)
    with contextlib.suppress(DeliveryError):
        await output.send(target, message_for(renderer, digest, "email"), envelope=Envelope("d"))
