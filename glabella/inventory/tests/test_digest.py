"""The daily stock digest goes to each clinic's owners over real SMTP (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from datetime import timedelta
from email.message import Message

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from glabella.accounts.roles import Role
from glabella.accounts.services import add_clinic, add_member
from glabella.conftest import PASSWORD
from glabella.inventory.tests.helpers import clinic_today, in_a_year, receive_botox_cosmetic
from glabella.mail_testing import free_port, smtp_server


@pytest.fixture
def smtp(settings):
    with smtp_server(settings, "glabella@alpha.test") as (inbox, _port):
        yield inbox


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def test_the_digest_reaches_the_clinics_owners_over_smtp(world, smtp, capsys):
    expiring = clinic_today(world) + timedelta(days=9)
    receive_botox_cosmetic(world, lot="EXP9", count=2, expiry=expiring)
    receive_botox_cosmetic(world, lot="LATER", count=2, expiry=in_a_year())
    # A second clinic with nothing to report gets no e-mail; the other organization neither.
    add_clinic(world.actor("owner"), name="Alpha Quiet", timezone="Europe/London")
    second_owner = add_member(
        world.actor("owner"),
        email="co-owner@alpha.test",
        clinic=world.clinic,
        role=Role.OWNER,
        password=PASSWORD,
    )

    call_command("stock_digest")

    assert len(smtp.messages) == 1
    sender, recipients, message = smtp.messages[0]
    assert sender == "glabella@alpha.test"
    assert sorted(recipients) == ["co-owner@alpha.test", "owner@alpha.test"]
    assert second_owner.user.email in message["To"]
    assert message["Subject"].startswith("Stock at Alpha Central")
    body = _body(message)
    assert "Botox Cosmetic lot EXP9" in body
    assert f"expires on {expiring:%d/%m/%Y}, in 9 days" in body
    assert "LATER" not in body
    out = capsys.readouterr().out
    assert "Alpha Central (clinic" in out and "sent 1 item(s) to co-owner@alpha.test" in out
    assert "Alpha Quiet" in out and "nothing to report, no e-mail" in out
    assert "Stock digest: 1 e-mail(s) sent" in out


def test_a_dry_run_sends_nothing_but_says_what_it_would(world, smtp, capsys):
    receive_botox_cosmetic(
        world, lot="EXP3", count=1, expiry=clinic_today(world) + timedelta(days=3)
    )
    call_command("stock_digest", "--dry-run")
    assert smtp.messages == []
    out = capsys.readouterr().out
    assert "would send" in out and "owner@alpha.test" in out and "lot EXP3" in out
    assert "dry run: nothing was sent" in out


def test_one_clinic_only_and_an_unknown_clinic(world, smtp, capsys):
    receive_botox_cosmetic(
        world, lot="EXP4", count=1, expiry=clinic_today(world) + timedelta(days=4)
    )
    quiet = add_clinic(world.actor("owner"), name="Alpha Quiet", timezone="Europe/London")
    call_command("stock_digest", "--clinic", str(quiet.pk))
    assert smtp.messages == []
    call_command("stock_digest", "--clinic", str(world.clinic.pk))
    assert len(smtp.messages) == 1
    with pytest.raises(CommandError, match="No clinic with id 999999"):
        call_command("stock_digest", "--clinic", "999999")


def test_an_unreachable_mail_server_is_reported_with_a_failing_exit(world, settings, capsys):
    receive_botox_cosmetic(
        world, lot="EXP2", count=1, expiry=clinic_today(world) + timedelta(days=2)
    )
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 5
    with pytest.raises(CommandError, match="1 failed") as failure:
        call_command("stock_digest")
    assert failure.value.returncode == 1
    assert "could not send to owner@alpha.test" in capsys.readouterr().err
