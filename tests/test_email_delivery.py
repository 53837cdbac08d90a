"""A scheduled email, end to end through the worker to a real SMTP server: the footer tells
the reader the date they subscribed and links to their own unsubscribe page."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.digest.formatting import long_date
from bot.outputs import HttpLimits, OutputContext, TargetPolicy
from bot.store import states
from tests.conftest import SEED_STATE
from tests.outputs.conftest import settings_for
from tests.outputs.test_email_footer import bodies
from tests.test_worker import add, dispatcher, finish, queue


async def test_the_worker_tells_each_reader_when_they_subscribed(db, tmp_path, smtp) -> None:
    port, handler = smtp
    context = OutputContext(
        settings=settings_for(
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            public_url="https://briefing.example.org",
        ),
        policy=TargetPolicy(),
        limits=HttpLimits(total_timeout=5),
    )
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    en = await add(db, "en@example.org", kind="email", timezone="Asia/Tokyo")
    fr = await add(db, "fr@example.org", kind="email", locale="fr", timezone="America/Denver")
    delivered = await finish(dispatcher(db, context), await queue(db, [en.id, fr.id]))
    await context.aclose()
    assert [d.status for d in delivered] == ["delivered", "delivered"]
    received = {m.rcpt_tos[0]: bodies(m.original_content) for m in handler.messages}
    for sub, reason in (
        (en, "You receive this briefing because en@example.org was subscribed to it on {}."),
        (
            fr,
            "Vous recevez ce bulletin parce que l'adresse fr@example.org y est abonnée depuis le {}.",
        ),
    ):
        day = long_date(sub.created_at.astimezone(ZoneInfo(sub.timezone)), sub.locale)
        text, html = received[sub.address]
        assert reason.format(day) in text
        link = f"https://briefing.example.org/unsubscribe/{sub.unsubscribe_token}"
        assert text.rstrip().endswith(link) and f'href="{link}"' in html
