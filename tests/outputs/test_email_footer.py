"""What a reader sees at the end of an email: why they get it and how to stop it, in their
language; subject and List-Id from templates. Delivered through a real SMTP server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization

from bot.digest import DigestRenderer
from bot.errors import ConfigError
from bot.outputs import Envelope, Target
from tests.browser import chromium
from tests.outputs.conftest import message_for
from tests.outputs.test_email import make_key_and_cert, parse, smtp_output

PUBLIC = "https://briefing.example.org"
# 23:30 UTC on 30 November is 1 December in Paris, the reader's zone
SUBSCRIBED = datetime(2025, 11, 30, 23, 30, tzinfo=UTC)


def bodies(data: bytes) -> tuple[str, str]:
    """The text and HTML bodies as a mail client reads them (line ends as LF)."""
    mail = parse(data)
    return tuple(  # type: ignore[return-value]
        mail.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html")
    )


async def deliver(output, handler, message, *pairs: tuple[str, Envelope]) -> list[bytes]:
    for address, envelope in pairs:
        await output.send(Target("email", address), message, envelope=envelope)
    await output.aclose()
    return [m.original_content for m in handler.messages]


@pytest.mark.parametrize(
    ("locale", "reason", "link_label"),
    [
        (
            "en",
            "You receive this briefing because reader@example.org was subscribed to it on "
            "1 December 2025.",
            "Unsubscribe",
        ),
        (
            "fr",
            "Vous recevez ce bulletin parce que l'adresse reader@example.org y est abonnée "
            "depuis le 1er décembre 2025.",
            "Se désabonner",
        ),
    ],
)
async def test_both_bodies_end_with_the_reason_and_the_unsubscribe_link(
    tmp_path, smtp, renderer, digest, locale, reason, link_label
) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, public_url=PUBLIC + "/")
    message = message_for(renderer, digest.model_copy(update={"locale": locale}), "email")
    envelope = Envelope("d1", unsubscribe_token="tok-123", subscribed_at=SUBSCRIBED)
    (data,) = await deliver(output, handler, message, ("reader@example.org", envelope))
    text, html = bodies(data)
    link = f"{PUBLIC}/unsubscribe/tok-123"
    assert parse(data)["List-Unsubscribe"].startswith(f"<{link}>")  # the same page
    assert "Pokrovsk" in text and text.rstrip().endswith(
        f"{link_label}\u00a0: {link}" if locale == "fr" else f"{link_label}: {link}"
    )
    assert reason in text
    assert "\n-- \n" in text  # the usual signature separator
    assert reason.replace("reader@example.org", "<strong>reader@example.org</strong>") in html
    assert f'<a id="unsubscribe" href="{link}" style="color:#1a3d6d;">{link_label}</a>' in html
    assert html.index('id="unsubscribe"') > html.index("Pokrovsk")
    assert html.index('id="unsubscribe"') < html.lower().rindex("</body>")


async def test_without_a_public_url_the_link_is_the_mailto_of_the_header(
    tmp_path, smtp, renderer, digest
) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port)
    message = message_for(renderer, digest, "email")
    envelope = Envelope("d1", unsubscribe_token="t0k", subscribed_at=SUBSCRIBED)
    (data,) = await deliver(output, handler, message, ("r@example.org", envelope))
    mailto = "mailto:briefing@example.org?subject=unsubscribe%20t0k"
    assert parse(data)["List-Unsubscribe"] == f"<{mailto}>"
    text, html = bodies(data)
    assert f"Unsubscribe: {mailto}" in text and f'href="{mailto}"' in html


async def test_a_one_off_message_says_so_and_has_no_unsubscribe_link(
    tmp_path, smtp, renderer, digest
) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, public_url=PUBLIC)
    en = message_for(renderer, digest, "email")
    fr = message_for(renderer, digest.model_copy(update={"locale": "fr"}), "email")
    for message, address in ((en, "one@example.org"), (fr, "une@example.org")):
        await output.send(Target("email", address), message, envelope=Envelope("oneoff_1"))
    await output.aclose()
    (en_text, en_html), (fr_text, fr_html) = (bodies(m.original_content) for m in handler.messages)
    assert "This is a one-off message to one@example.org, outside any subscription" in en_text
    assert "one-off message to <strong>one@example.org</strong>" in en_html
    assert "envoyé une seule fois à l'adresse une@example.org" in fr_text
    assert "une seule fois à l'adresse <strong>une@example.org</strong>" in fr_html
    for received in handler.messages:
        mail = parse(received.original_content)
        assert mail["List-Unsubscribe"] is None and mail["List-Unsubscribe-Post"] is None
        text, html = bodies(received.original_content)
        assert "unsubscribe/" not in text + html and "mailto:" not in text + html
        assert "<a " not in html.split("Pokrovsk")[-1].split("[")[-1]  # no link after sources


async def test_the_address_is_escaped_in_html_and_the_date_may_be_unknown(
    tmp_path, smtp, renderer, digest
) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, public_url=PUBLIC)
    message = message_for(renderer, digest, "email")
    address = "o'brien&co@example.org"
    target = await output.validate(Target("email", address))
    await output.send(target, message, envelope=Envelope("d", unsubscribe_token="x"))
    await output.aclose()
    text, html = bodies(handler.messages[0].original_content)
    assert f"because {address} was subscribed to it." in text
    assert "<strong>o&#39;brien&amp;co@example.org</strong> was subscribed to it." in html


async def test_readers_of_one_message_share_its_encoded_body(
    tmp_path, smtp, renderer, digest
) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, public_url=PUBLIC)
    message = message_for(renderer, digest, "email")
    first, second = await deliver(
        output,
        handler,
        message,
        ("a@example.org", Envelope("d1", unsubscribe_token="aaa", subscribed_at=SUBSCRIBED)),
        ("b@example.org", Envelope("d2", unsubscribe_token="bbb", subscribed_at=SUBSCRIBED)),
    )
    assert len(message.memo) == 1  # encoded once
    (a_text, a_html), (b_text, b_html) = bodies(first), bodies(second)
    assert "unsubscribe/aaa" in a_text + a_html and "aaa" not in b_text + b_html
    assert a_text.split("\n-- \n")[0] == b_text.split("\n-- \n")[0]
    assert a_html.split('<p id="briefing-footer"')[0] == b_html.split('<p id="briefing-footer"')[0]


async def test_subject_and_list_id_come_from_the_templates(tmp_path, smtp, digest) -> None:
    port, handler = smtp
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "email.subject.j2").write_text(
        "{# a comment #}\n[Brief] {{ d.story }} ({{ long_date(d.date) }})\n", encoding="utf-8"
    )
    (overrides / "email.list_id.j2").write_text("Newsroom brief <news.{{ domain }}>\n")
    renderer = DigestRenderer(templates_dir=overrides)
    output = smtp_output(tmp_path, port)
    fr = message_for(renderer, digest.model_copy(update={"locale": "fr"}), "email")
    (data,) = await deliver(output, handler, fr, ("r@example.org", Envelope("d")))
    mail = parse(data)
    assert mail["Subject"] == "[Brief] US–Russia–Ukraine peace talks (2 décembre 2025)"
    assert mail["List-Id"] == "Newsroom brief <news.example.org>"


@pytest.mark.parametrize(
    ("template", "source"),
    [
        ("email.subject.j2", "{{ d.story }}\nBcc: victim@example.org\n"),
        ("email.list_id.j2", "Brief\r\n <x.{{ domain }}>"),
    ],
)
def test_a_header_template_that_renders_a_line_break_is_refused(
    tmp_path, digest, template, source
) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / template).write_text(source, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"template {template} renders a line break"):
        message_for(DigestRenderer(templates_dir=overrides), digest, "email")


async def test_dkim_covers_the_reader_footer(tmp_path, smtp, renderer, digest) -> None:
    port, handler = smtp
    key, key_path, _ = make_key_and_cert(tmp_path)
    output = smtp_output(
        tmp_path, port, public_url=PUBLIC,
        dkim_domain="example.org", dkim_selector="brief", dkim_private_key=key_path,
    )  # fmt: skip
    message = message_for(renderer, digest.model_copy(update={"locale": "fr"}), "email")
    first, second = await deliver(
        output,
        handler,
        message,
        ("a@example.org", Envelope("d1", unsubscribe_token="aaa", subscribed_at=SUBSCRIBED)),
        ("usér@exämple.org", Envelope("d2", unsubscribe_token="bbb", subscribed_at=SUBSCRIBED)),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record

    assert dkim.verify(first, dnsfunc=dns) and dkim.verify(second, dnsfunc=dns)
    assert b"unsubscribe/aaa" in first
    assert not dkim.verify(first.replace(b"unsubscribe/aaa", b"unsubscribe/zzz"), dnsfunc=dns)


@pytest.mark.parametrize("locale", ["en", "fr"])
async def test_the_footer_link_shows_in_a_browser(tmp_path, smtp, renderer, digest, locale) -> None:
    port, handler = smtp
    output = smtp_output(tmp_path, port, public_url=PUBLIC)
    message = message_for(renderer, digest.model_copy(update={"locale": locale}), "email")
    envelope = Envelope("d", unsubscribe_token="tok", subscribed_at=SUBSCRIBED)
    (data,) = await deliver(output, handler, message, ("reader@example.org", envelope))
    _, html = bodies(data)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 375, "height": 800})
        await page.route("**/*", lambda route: route.abort())  # an email loads nothing
        await page.set_content(html)
        link = page.locator("a#unsubscribe")
        assert await link.is_visible()
        assert await link.get_attribute("href") == f"{PUBLIC}/unsubscribe/tok"
        assert await link.inner_text() == ("Se désabonner" if locale == "fr" else "Unsubscribe")
        footer = await page.inner_text("#briefing-footer")
        assert "reader@example.org" in footer
        assert ("1er décembre 2025" if locale == "fr" else "1 December 2025") in footer
        box = await link.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 375
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        font = await page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#briefing-footer')).fontSize)"
        )
        assert font >= 13
        await page.screenshot(path=str(Path(tmp_path) / f"footer-{locale}.png"), full_page=True)
