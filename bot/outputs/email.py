"""Email output: multipart/alternative digests over SMTP, or ``.eml`` files with no SMTP host.

SMTP connections are kept and reused for every message (a small pool,
``BRIEFING_SMTP_CONNECTIONS``, most recently used first); SMTP 4xx answers are retryable,
5xx permanent. Messages carry a Message-ID stable per delivery, List-Id and one-click
List-Unsubscribe (RFC 8058), and are DKIM-signed when a key is configured.

Both bodies end with a footer for the reader (why they get the message, the unsubscribe
link). The rest is the same for every reader of a message, so it is encoded once: quoted-
printable is encoded line by line, which lets each reader's footer, encoded on its own, be
put between the shared pieces at a line boundary.

Addresses are kept as the reader typed them and put in wire form at send time: the domain
in IDNA (``xn--``) form in the envelope and the To header; a Unicode local part is sent
raw (RFC 6531/6532) and needs a server that offers SMTPUTF8.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email import quoprimime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiosmtplib
import dkim
from email_validator import validate_email
from markupsafe import escape

from bot.digest.formatting import long_date
from bot.digest.render import EMAIL_PARTS, drop_slot_lines, fill_slots, footer_part
from bot.errors import (
    BriefingError,
    ConfigError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetError,
)
from bot.links import preferences_url
from bot.outputs.base import Envelope, Message, Output, OutputContext, Receipt, Target

SIGNED_HEADERS = [
    b"From", b"To", b"Subject", b"Date", b"Message-ID",
    b"List-Id", b"List-Unsubscribe", b"List-Unsubscribe-Post",
]  # fmt: skip
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")
_BODY_END = re.compile(r"</body", re.IGNORECASE)


def check_header(name: str, value: str) -> str:
    """Refuse a header value with a CR or LF (header injection)."""
    if "\r" in value or "\n" in value:
        raise TargetError(f"{name} may not contain a line break")
    return value


def _header_line(name: str, value: str, *, raw: bool = False) -> bytes:
    """One header, CRLF-terminated: plain ASCII as it is, ``raw`` values (an address, which
    may never be an encoded-word) as UTF-8 (RFC 6532), anything else encoded by the email
    package."""
    check_header(name, value)
    if (raw or value.isascii()) and len(name) + len(value) < 900:
        return f"{name}: {value}\r\n".encode()
    single = EmailMessage(policy=SMTP_POLICY)
    single[name] = value
    return single.as_bytes(policy=SMTP_POLICY).removesuffix(b"\r\n")


def typed_address(address: str) -> str:
    """The address as the reader typed it, trimmed and without ``mailto:``."""
    address = address.strip()
    if address[:7].lower() == "mailto:":
        address = address[7:].strip()
    return address


@dataclass(frozen=True)
class Mailbox:
    """An address in wire form: the local part as typed, the domain in IDNA (ASCII) form.

    ``smtputf8`` is set when the local part is not ASCII: such an address can only be
    sent with SMTPUTF8 (RFC 6531) and written raw in UTF-8 headers (RFC 6532).
    """

    address: str
    smtputf8: bool

    @classmethod
    def parse(cls, address: str) -> Mailbox:
        """The wire form of ``address``; raise ``TargetError`` naming the problem."""
        check_header("the address", address)
        try:
            checked = validate_email(address, check_deliverability=False)
        except ValueError as exc:  # EmailNotValidError, or an encoding error deeper down
            raise TargetError(f"invalid email address {address!r}: {exc}") from exc
        return cls(f"{checked.local_part}@{checked.ascii_domain}", smtputf8=checked.smtputf8)


def sender_address(mail_from: str) -> Address:
    """``BRIEFING_MAIL_FROM`` as a From address, a Unicode domain converted to IDNA; raise
    ``ConfigError`` if it has no usable address (an ASCII local part is required)."""
    name, sender = parseaddr(check_header("BRIEFING_MAIL_FROM", mail_from))
    local, at, domain = sender.rpartition("@")
    if not at or not local or not domain:
        raise ConfigError(f"BRIEFING_MAIL_FROM {mail_from!r} has no address")
    if not local.isascii():
        raise ConfigError(f"BRIEFING_MAIL_FROM {mail_from!r} needs an ASCII local part")
    try:
        if not domain.isascii():
            domain = validate_email(
                sender, check_deliverability=False, globally_deliverable=False
            ).ascii_domain
        return Address(display_name=name, addr_spec=f"{local}@{domain}")
    except (ValueError, HeaderParseError) as exc:
        raise ConfigError(f"BRIEFING_MAIL_FROM {mail_from!r}: {exc}") from exc


@dataclass(frozen=True)
class SharedBody:
    """A message's encoded headers and body as every reader gets them, in three pieces:
    each reader's text footer goes after the first, their HTML footer after the second."""

    before_text_footer: bytes
    before_html_footer: bytes
    rest: bytes


def _line_before(body: str, at: int, line: str) -> str:
    """``body`` with ``line`` inserted as a line of its own at ``at``."""
    head, tail = body[:at], body[at:]
    if head and not head.endswith("\n"):
        head += "\n"
    return f"{head}{line}\n{tail}"


def _footer_place(html: str) -> int:
    """Where the HTML footer goes: before the last ``</body>``, else at the end."""
    ends = [match.start() for match in _BODY_END.finditer(html)]
    return ends[-1] if ends else len(html)


def _quoted_printable(footer: str) -> bytes:
    """``footer`` as a run of whole quoted-printable lines (UTF-8, CRLF), as the email
    package encodes the rest of the body."""
    if not footer:
        return b""
    if not footer.endswith("\n"):
        footer += "\n"
    encoded = quoprimime.body_encode(footer.encode("utf-8").decode("latin-1"), 76)
    if not encoded.endswith("\n"):
        encoded += "\n"
    return encoded.replace("\n", "\r\n").encode("ascii")


class EmailOutput(Output):
    """Sends digests as email (text and HTML alternatives)."""

    name = "email"
    formats = ("text", "html", *EMAIL_PARTS)
    target_form = "name@example.org"
    limits_kept = "one message"
    secrets_needed = "none (BRIEFING_SMTP_* settings)"

    def __init__(self, context: OutputContext) -> None:
        super().__init__(context)
        settings = context.settings
        self._from = sender_address(settings.mail_from)
        self._sender = self._from.addr_spec
        self._domain = self._sender.rsplit("@", 1)[1]
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.smtp_connections)
        self._dkim_key: bytes | None = None
        if settings.dkim_private_key is not None:
            if not (settings.dkim_domain and settings.dkim_selector):
                raise ConfigError(
                    "DKIM signing needs BRIEFING_DKIM_DOMAIN and BRIEFING_DKIM_SELECTOR"
                )
            try:
                self._dkim_key = settings.dkim_private_key.read_bytes()
            except OSError as exc:
                raise ConfigError(f"BRIEFING_DKIM_PRIVATE_KEY: {exc}") from exc

    async def validate(self, target: Target) -> Target:
        """The target with the address as typed (trimmed, without ``mailto:``); raise
        ``TargetError`` if it is not a valid address."""
        address = typed_address(target.address)
        Mailbox.parse(address)
        return Target(kind=target.kind, address=address)

    def unsubscribe_links(self, envelope: Envelope) -> tuple[str | None, str | None]:
        """(the https one-click page or None, the mailto link or None) for ``envelope``:
        both None for a one-off message, which belongs to no subscription."""
        token = envelope.unsubscribe_token
        if not token:
            return None, None
        mailto = f"mailto:{self._sender}?subject={quote('unsubscribe ' + token)}"
        public_url = self.context.settings.public_url
        page = f"{public_url.rstrip('/')}/unsubscribe/{quote(token)}" if public_url else None
        return page, mailto

    def personal_headers(self, to: Mailbox, *, envelope: Envelope) -> list[tuple[str, str]]:
        """The headers particular to one delivery."""
        page, mailto = self.unsubscribe_links(envelope)
        unsubscribe = []
        if mailto:
            links = ", ".join(f"<{link}>" for link in (page, mailto) if link)
            unsubscribe = [("List-Unsubscribe", links)]
            if page and page.startswith("https://"):  # RFC 8058: one-click only over https
                unsubscribe.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return [
            ("To", to.address),
            ("Date", format_datetime(datetime.now(UTC))),
            ("Message-ID", f"<{_UNSAFE_ID.sub('-', envelope.delivery_id)}@{self._domain}>"),
            *unsubscribe,
        ]

    def shared_part(self, message: Message) -> SharedBody:
        """From, Subject, List-Id and the multipart/alternative body (text, then HTML, both
        quoted-printable), cut where the readers' footers go: the same for every receiver
        of ``message``, so encoded once."""
        cached: SharedBody | None = message.memo.get("email")
        if cached is None:
            part = EmailMessage(policy=SMTP_POLICY)
            part["From"] = self._from
            part["Subject"] = check_header("Subject", message.body("email_subject"))
            part["List-Id"] = check_header(
                "List-Id", fill_slots(message.body("email_list_id"), {"domain": self._domain})
            )
            marker = f"briefing-footer-{secrets.token_hex(12)}"
            text, html = message.body("text"), message.body("html")
            part.set_content(_line_before(text, len(text), marker), cte="quoted-printable")
            part.add_alternative(
                _line_before(html, _footer_place(html), marker),
                subtype="html",
                cte="quoted-printable",
            )
            pieces = part.as_bytes(policy=SMTP_POLICY).split(marker.encode() + b"\r\n")
            if len(pieces) != 3:
                raise ValueError("the footer marker was encoded across lines")
            cached = message.memo.setdefault("email", SharedBody(*pieces))
        return cached

    def footers(self, message: Message, *, address: str, envelope: Envelope) -> tuple[str, str]:
        """The text and HTML footers of one reader: why they get ``message`` (the address,
        the date they subscribed) and the link to unsubscribe, or that it is a one-off."""
        page, mailto = self.unsubscribe_links(envelope)
        digest = message.digest
        if not mailto:
            case, values = "one_off", {"address": address}
        else:
            values = {"address": address, "unsubscribe_url": page or mailto}
            case = "subscriber_undated"
            if envelope.subscribed_at is not None:
                case = "subscriber"
                local = envelope.subscribed_at.astimezone(ZoneInfo(digest.timezone))
                values["subscribed_on"] = long_date(local, digest.locale)
        text, html = (
            message.body(footer_part("text", case)),
            message.body(footer_part("html", case)),
        )
        token = envelope.unsubscribe_token
        preferences = preferences_url(self.context.settings, token) if page and token else None
        if preferences:
            values["preferences_url"] = preferences
        else:
            text, html = (
                drop_slot_lines(text, "preferences_url"),
                drop_slot_lines(html, "preferences_url"),
            )
        escaped = {name: str(escape(value)) for name, value in values.items()}
        return fill_slots(text, values), fill_slots(html, escaped)

    def to_bytes(self, target: Target, message: Message, *, envelope: Envelope) -> bytes:
        """The whole message with CRLF line ends, DKIM-signed when configured; raise
        ``TargetError`` if the address is invalid."""
        address = typed_address(target.address)
        return self._message_bytes(Mailbox.parse(address), address, message, envelope=envelope)

    def _message_bytes(
        self, to: Mailbox, address: str, message: Message, *, envelope: Envelope
    ) -> bytes:
        personal = self.personal_headers(to, envelope=envelope)
        text, html = self.footers(message, address=address, envelope=envelope)
        shared = self.shared_part(message)
        data = b"".join(
            [
                *(_header_line(name, value, raw=name == "To") for name, value in personal),
                shared.before_text_footer,
                _quoted_printable(text),
                shared.before_html_footer,
                _quoted_printable(html),
                shared.rest,
            ]
        )
        settings = self.context.settings
        if self._dkim_key is None or not settings.dkim_selector or not settings.dkim_domain:
            return data
        present = {name.lower() for name, _ in personal} | {"from", "subject", "list-id"}
        signature = dkim.sign(
            data,
            settings.dkim_selector.encode(),
            settings.dkim_domain.encode(),
            self._dkim_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h for h in SIGNED_HEADERS if h.decode().lower() in present],
        )
        return bytes(signature) + data

    async def send(self, target: Target, message: Message, *, envelope: Envelope) -> Receipt:
        try:
            address = typed_address(target.address)
            recipient = Mailbox.parse(address)
            data = self._message_bytes(recipient, address, message, envelope=envelope)
        except (TargetError, ValueError) as exc:
            raise PermanentDeliveryError(f"cannot build the message: {exc}") from exc
        if not self.context.settings.smtp_host:
            path = self._write_eml(data, envelope.delivery_id)
            return Receipt(status="written", answer=str(path))
        return await self._send_smtp(recipient, data)

    async def send_mail(self, to: str, mail: EmailMessage, *, mail_id: str) -> Receipt:
        """Send a message the bot writes itself (a sign-up's confirmation) to ``to`` the way
        digests go (SMTP settings, or an ``.eml`` file); From, To, Date and Message-ID are
        set here. Raise ``TargetError`` for a bad address, a delivery error if it fails."""
        recipient = Mailbox.parse(typed_address(to))
        mail["From"] = self._from
        mail["To"] = recipient.address
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = f"<{_UNSAFE_ID.sub('-', mail_id)}@{self._domain}>"
        data = mail.as_bytes(policy=SMTP_POLICY)
        if not self.context.settings.smtp_host:
            return Receipt(status="written", answer=str(self._write_eml(data, mail_id)))
        return await self._send_smtp(recipient, data)

    def _write_eml(self, data: bytes, delivery_id: str) -> Path:
        directory = self.context.settings.mail_dir
        for folder in [*reversed(directory.parents), directory]:  # private: readers' addresses
            if not folder.is_dir():
                folder.mkdir(mode=0o700, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = directory / f"{stamp}_{_UNSAFE_ID.sub('-', delivery_id)}.eml"
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".tmp") as handle:
            handle.write(data)
        os.replace(handle.name, path)
        return path

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.context.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        security = settings.smtp_security
        default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
        host, port = settings.smtp_host or "localhost", settings.smtp_port or default_port
        try:
            await self.context.policy.check_egress(host, port)
        except TargetError as exc:  # the operator's setting, not the reader's address
            raise ConfigError(f"the SMTP server (BRIEFING_SMTP_HOST): {exc}") from exc
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port or default_port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            username=settings.smtp_username,
            password=password,
            cert_bundle=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            timeout=self.context.limits.total_timeout,
        )
        await smtp.connect()
        return smtp

    async def _send_smtp(self, recipient: Mailbox, data: bytes) -> Receipt:
        """Send on an idle pooled connection (the most recently used), or open one.

        A connection goes back to the pool only when the server answered and the session
        is clean; on any other outcome, cancellation included, it is closed.
        """
        async with self._slots:
            smtp = self._idle.pop() if self._idle else None
            reusable = False
            try:
                if smtp is None or not smtp.is_connected:
                    _close(smtp)
                    smtp = await self._connect()
                options: list[str] = []
                if recipient.smtputf8:
                    if not await _offers_smtputf8(smtp):
                        reusable = True
                        raise PermanentDeliveryError(
                            "the SMTP server does not offer SMTPUTF8, needed for the "
                            f"non-ASCII local part of {recipient.address!r}"
                        )
                    options = ["SMTPUTF8"]
                _, answer = await smtp.sendmail(
                    self._sender, [recipient.address], data, mail_options=options
                )
                reusable = True
                return Receipt(status="250", answer=answer)
            except BriefingError:
                raise
            except aiosmtplib.SMTPRecipientsRefused as exc:
                reusable = True  # the server answered and the envelope was reset
                codes = [error.code for error in exc.recipients]
                reason = "; ".join(f"{e.code} {e.message}" for e in exc.recipients)
                retryable = all(400 <= code < 500 for code in codes)
                raise (RetryableDeliveryError if retryable else PermanentDeliveryError)(
                    f"SMTP refused the recipient: {reason}", status=codes[0] if codes else None
                ) from exc
            except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPSenderRefused) as exc:
                what = (
                    "refused the login (BRIEFING_SMTP_USERNAME, BRIEFING_SMTP_PASSWORD)"
                    if isinstance(exc, aiosmtplib.SMTPAuthenticationError)
                    else "refused the sender (BRIEFING_MAIL_FROM)"
                )
                raise ConfigError(f"the SMTP server {what}: {exc.code} {exc.message}") from exc
            except aiosmtplib.SMTPResponseException as exc:
                error = RetryableDeliveryError if 400 <= exc.code < 500 else PermanentDeliveryError
                raise error(f"SMTP {exc.code}: {exc.message}", status=exc.code) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise RetryableDeliveryError(f"SMTP connection failed: {exc}") from exc
            except ValueError as exc:  # the address or message cannot be encoded: for good
                raise PermanentDeliveryError(f"SMTP cannot send the message: {exc}") from exc
            except Exception as exc:
                raise RetryableDeliveryError(
                    f"SMTP send failed: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                if reusable and smtp is not None:
                    self._idle.append(smtp)
                else:
                    _close(smtp)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            if smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit()
            _close(smtp)


async def _offers_smtputf8(smtp: aiosmtplib.SMTP) -> bool:
    """Whether the server offers SMTPUTF8 (greeting it with EHLO first if needed); a server
    that refuses EHLO for good speaks no extension at all."""
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError as exc:
            if exc.code < 500:
                raise
            return False
    return smtp.supports_extension("smtputf8")


def _close(smtp: aiosmtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            smtp.close()
