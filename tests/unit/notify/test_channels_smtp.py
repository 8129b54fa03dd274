"""E-mail delivered to a real SMTP server process (aiosmtpd) started by the test."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notify.channels import Outcome, OutgoingMessage, SmtpEmail


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    def __init__(self):
        self.received = []
        self.rcpt_answer = None     # e.g. "550 ..." to refuse recipients

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.original_content, policy=policy.default),
                              session.authenticated))
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"notify", b"pw")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


MESSAGE = OutgoingMessage(
    idempotency_key="evt-0006:S-0003:email", recipient="zhaolx@lanling.gov.cn",
    subject="超期预警:案件371324-20261201-000123严重超期",
    body="案件371324-20261201-000123的办理时限为2026-12-04 17:30,目前严重超期。请督促承办人办理。",
    case_no="371324-20261201-000123")


def channel(port: int, **options) -> SmtpEmail:
    return SmtpEmail("127.0.0.1", port, sender="兰陵县人民调解中心 <noreply@tj.lanling.gov.cn>",
                     starttls=options.pop("starttls", False), timeout=5, **options)


def test_an_email_arrives_with_utf8_subject_body_and_a_key_derived_message_id(smtp_server):
    email = channel(smtp_server.port)
    result = email.send(MESSAGE)
    assert result.outcome is Outcome.SENT
    [(mail_from, rcpt_tos, received, _)] = smtp_server.received
    assert mail_from == "noreply@tj.lanling.gov.cn" and rcpt_tos == ["zhaolx@lanling.gov.cn"]
    assert received["Subject"] == MESSAGE.subject
    assert received["From"].addresses[0].display_name == "兰陵县人民调解中心"
    assert received["To"] == "zhaolx@lanling.gov.cn"
    assert received["Message-ID"] == email.message_id(MESSAGE.idempotency_key)
    assert received["Message-ID"].endswith("@tj.lanling.gov.cn>")
    assert received["X-Idempotency-Key"] == MESSAGE.idempotency_key
    assert received.get_content_charset() == "utf-8"
    assert received.get_content().strip() == MESSAGE.body


def test_a_resent_email_can_be_deduplicated_by_its_message_id(smtp_server):
    email = channel(smtp_server.port)
    other = OutgoingMessage("evt-0006:S-0009:email", "li@lanling.gov.cn", "超期预警", "正文")
    for message in (MESSAGE, other, MESSAGE):     # the first was sent again after a crash
        assert email.send(message).sent
    ids = [received["Message-ID"] for _, _, received, _ in smtp_server.received]
    assert len(ids) == 3 and len(set(ids)) == 2


def test_login(smtp_server):
    assert channel(smtp_server.port, username="notify", password="pw").send(MESSAGE).sent
    assert smtp_server.received[0][3] is True
    refused = channel(smtp_server.port, username="notify", password="wrong").send(MESSAGE)
    assert refused.outcome is Outcome.PERMANENT_FAILURE and "535" in refused.detail


@pytest.mark.parametrize("answer, outcome", [
    ("550 5.1.1 No such user", Outcome.PERMANENT_FAILURE),
    ("451 4.3.0 Try again later", Outcome.TRANSIENT_FAILURE),
])
def test_refused_recipients(smtp_server, answer, outcome):
    smtp_server.rcpt_answer = answer
    result = channel(smtp_server.port).send(MESSAGE)
    assert result.outcome is outcome and answer[:3] in result.detail
    assert smtp_server.received == []


def test_a_server_without_starttls_is_a_permanent_configuration_error(smtp_server):
    result = channel(smtp_server.port, starttls=True).send(MESSAGE)
    assert result.outcome is Outcome.PERMANENT_FAILURE and smtp_server.received == []


def test_no_server_is_transient():
    assert channel(free_port()).send(MESSAGE).outcome is Outcome.TRANSIENT_FAILURE
