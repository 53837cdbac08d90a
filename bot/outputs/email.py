"""Email output: multipart/alternative digests over SMTP, or ``.eml`` files with no SMTP host.

SMTP connections are kept and reused for every message (a small pool,
``BRIEFING_SMTP_CONNECTIONS``, most recently used first); SMTP 4xx answers are retryable,
5xx permanent. Messages carry a Message-ID stable per delivery, List-Id and one-click
List-Unsubscribe (RFC 8058), and are DKIM-signed when a key is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import quote

import aiosmtplib
import dkim
from email_validator import EmailNotValidError, validate_email

from bot.digest.formatting import full_date
from bot.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs.base import Envelope, Message, Output, OutputContext, Receipt, Target

SIGNED_HEADERS = [
    b"From", b"To", b"Subject", b"Date", b"Message-ID",
    b"List-Id", b"List-Unsubscribe", b"List-Unsubscribe-Post",
]  # fmt: skip
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def check_header(name: str, value: str) -> str:
    """Refuse a header value with a CR or LF (header injection)."""
    if "\r" in value or "\n" in value:
        raise TargetError(f"{name} may not contain a line break")
    return value


def _header_line(name: str, value: str) -> bytes:
    """One header, CRLF-terminated: plain ASCII as it is, anything else encoded by the
    email package."""
    check_header(name, value)
    if value.isascii() and len(name) + len(value) < 900:
        return f"{name}: {value}\r\n".encode()
    single = EmailMessage(policy=SMTP_POLICY)
    single[name] = value
    return single.as_bytes(policy=SMTP_POLICY).removesuffix(b"\r\n")


def normalize_address(address: str) -> str:
    """A syntactically valid address, normalised; raise ``TargetError`` naming the problem."""
    check_header("the address", address)
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise TargetError(f"invalid email address {address!r}: {exc}") from exc


class EmailOutput(Output):
    """Sends digests as email (text and HTML alternatives)."""

    name = "email"
    formats = ("text", "html")

    def __init__(self, context: OutputContext) -> None:
        super().__init__(context)
        settings = context.settings
        sender = parseaddr(check_header("BRIEFING_MAIL_FROM", settings.mail_from))[1]
        if "@" not in sender:
            raise ConfigError(f"BRIEFING_MAIL_FROM {settings.mail_from!r} has no address")
        self._sender = sender
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
        address = target.address.removeprefix("mailto:")
        return Target(kind=target.kind, address=normalize_address(address))

    def personal_headers(self, target: Target, *, envelope: Envelope) -> list[tuple[str, str]]:
        """The headers particular to one delivery (the address as validated by the caller)."""
        settings = self.context.settings
        token = envelope.unsubscribe_token or "one-off"
        links = [f"<mailto:{self._sender}?subject={quote('unsubscribe ' + token)}>"]
        one_click = []
        if settings.public_url and envelope.unsubscribe_token:
            base = settings.public_url.rstrip("/")
            links.insert(0, f"<{base}/unsubscribe/{quote(envelope.unsubscribe_token)}>")
            if base.startswith("https://"):  # RFC 8058: one-click only over https
                one_click = [("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
        return [
            ("To", target.address),
            ("Date", format_datetime(datetime.now(UTC))),
            ("Message-ID", f"<{_UNSAFE_ID.sub('-', envelope.delivery_id)}@{self._domain}>"),
            ("List-Unsubscribe", ", ".join(links)),
            *one_click,
        ]

    def shared_part(self, message: Message) -> bytes:
        """From, Subject, List-Id and the multipart/alternative body (text, then HTML):
        the same for every receiver of ``message``, so encoded once."""
        cached: bytes | None = message.memo.get("email")
        if cached is None:
            digest = message.digest
            part = EmailMessage(policy=SMTP_POLICY)
            part["From"] = check_header("From", self.context.settings.mail_from)
            part["Subject"] = check_header(
                "Subject", f"{digest.story} — {full_date(digest.date, digest.locale)}"
            )
            part["List-Id"] = f"Peace talks briefing <briefing.{self._domain}>"
            part.set_content(message.body("text"))
            part.add_alternative(message.body("html"), subtype="html")
            cached = message.memo.setdefault("email", part.as_bytes(policy=SMTP_POLICY))
        return cached

    def to_bytes(self, target: Target, message: Message, *, envelope: Envelope) -> bytes:
        """The whole message with CRLF line ends, DKIM-signed when configured."""
        personal = self.personal_headers(target, envelope=envelope)
        data = b"".join(_header_line(name, value) for name, value in personal) + self.shared_part(
            message
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
            recipient = normalize_address(target.address)
            data = self.to_bytes(Target(target.kind, recipient), message, envelope=envelope)
        except (TargetError, ValueError) as exc:
            raise PermanentDeliveryError(f"cannot build the message: {exc}") from exc
        if not self.context.settings.smtp_host:
            path = self._write_eml(data, envelope.delivery_id)
            return Receipt(status="written", answer=str(path))
        return await self._send_smtp(recipient, data)

    def _write_eml(self, data: bytes, delivery_id: str) -> Path:
        directory = self.context.settings.mail_dir
        directory.mkdir(parents=True, exist_ok=True)
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

    async def _send_smtp(self, recipient: str, data: bytes) -> Receipt:
        """Send on an idle pooled connection (the most recently used), or open one."""
        async with self._slots:
            smtp = self._idle.pop() if self._idle else None
            try:
                if smtp is None or not smtp.is_connected:
                    smtp = await self._connect()
                _, answer = await smtp.sendmail(self._sender, [recipient], data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(smtp)  # type: ignore[arg-type]  # connected: it answered
                codes = [error.code for error in exc.recipients]
                reason = "; ".join(f"{e.code} {e.message}" for e in exc.recipients)
                retryable = all(400 <= code < 500 for code in codes)
                raise (RetryableDeliveryError if retryable else PermanentDeliveryError)(
                    f"SMTP refused the recipient: {reason}", status=codes[0] if codes else None
                ) from exc
            except aiosmtplib.SMTPResponseException as exc:
                _close(smtp)
                error = RetryableDeliveryError if 400 <= exc.code < 500 else PermanentDeliveryError
                raise error(f"SMTP {exc.code}: {exc.message}", status=exc.code) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                _close(smtp)
                raise RetryableDeliveryError(f"SMTP connection failed: {exc}") from exc
            self._idle.append(smtp)
            return Receipt(status="250", answer=answer)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            if smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit()
            _close(smtp)


def _close(smtp: aiosmtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            smtp.close()
