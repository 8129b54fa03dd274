from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from services.notify.channels import (HttpSmsGateway, LocalSink, LocalSmsSink, Outcome, OutgoingMessage, RetryPolicy,
                                      SendResult, SmtpEmail, WebhookPush, channels_from_env, next_attempt_at)

PHONE = "13912345678"


def sms(key: str) -> OutgoingMessage:
    return OutgoingMessage(key, PHONE, None, "您的案件371324-20261201-000123已受理。", "371324-20261201-000123")


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_local_sms_sink_writes_each_key_once_across_restarts(tmp_path):
    path = tmp_path / "sms.jsonl"
    sink = LocalSmsSink(path)
    assert sink.send(sms("evt-1:c1:sms")).sent and sink.send(sms("evt-1:c1:sms")).sent
    restarted = LocalSmsSink(path)             # a new process, same file
    assert restarted.send(sms("evt-1:c1:sms")).sent
    assert restarted.send(sms("evt-2:c1:sms")).sent
    assert sink.send(sms("evt-2:c1:sms")).sent   # the old one learns what the new one wrote
    records = lines(path)
    assert [r["idempotency_key"] for r in records] == ["evt-1:c1:sms", "evt-2:c1:sms"]
    assert records[0]["text"] == "【兰陵调解】您的案件371324-20261201-000123已受理。"
    assert records[0]["to"] == "139****5678" and PHONE not in path.read_text(encoding="utf-8")


def test_a_line_cut_off_by_a_crash_does_not_swallow_the_next(tmp_path):
    path = tmp_path / "push.jsonl"
    path.write_text('{"idempotency_key": "evt-1:a:app_push", "te', encoding="utf-8")
    sink = LocalSink(path, "app_push")
    assert sink.send(OutgoingMessage("evt-2:a:app_push", "pa-1", "标题", "正文")).sent
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[-1])["idempotency_key"] == "evt-2:a:app_push"


def test_channels_default_to_local_sinks_under_var(tmp_path):
    channels = channels_from_env()
    assert {name: type(c) for name, c in channels.items()} == {
        "sms": LocalSmsSink, "email": LocalSink, "app_push": LocalSink}
    channels["sms"].send(sms("evt-9:c9:sms"))
    assert (tmp_path / "var" / "notify" / "sms.jsonl").exists()


def test_channels_from_the_environment(monkeypatch, tmp_path):
    env = {"NOTIFY_SMS_URL": "https://sms.example.cn/v1/send", "NOTIFY_SMS_KEY": "k1", "NOTIFY_SMS_SIGN": "【兰陵县司法局】",
           "NOTIFY_SMS_TIMEOUT": "4", "NOTIFY_SMTP_HOST": "smtp.lanling.gov.cn", "NOTIFY_SMTP_USER": "notify",
           "NOTIFY_SMTP_PASSWORD": "pw", "NOTIFY_SMTP_FROM": "调解中心 <tj@lanling.gov.cn>",
           "NOTIFY_PUSH_URL": "https://push.example.cn/hook", "NOTIFY_PUSH_SECRET": "s1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    channels = channels_from_env()
    sms_gateway, email, push = channels["sms"], channels["email"], channels["app_push"]
    assert isinstance(sms_gateway, HttpSmsGateway) and isinstance(email, SmtpEmail) and isinstance(push, WebhookPush)
    assert (sms_gateway.url, sms_gateway.api_key, sms_gateway.signature, sms_gateway.timeout) == (
        "https://sms.example.cn/v1/send", "k1", "【兰陵县司法局】", 4.0)
    assert (email.host, email.port, email.starttls, email.use_ssl, email.username) == (
        "smtp.lanling.gov.cn", 587, True, False, "notify")
    assert (push.url, push.secret) == ("https://push.example.cn/hook", "s1")
    monkeypatch.setenv("NOTIFY_SMTP_SSL", "true")
    assert channels_from_env()["email"].port == 465
    monkeypatch.setenv("NOTIFY_SMTP_SSL", "false")
    monkeypatch.setenv("NOTIFY_SMTP_STARTTLS", "false")
    assert channels_from_env()["email"].port == 25
    monkeypatch.delenv("NOTIFY_SMS_KEY")
    monkeypatch.setenv("NOTIFY_SMS_USER", "u")
    monkeypatch.setenv("NOTIFY_SMS_PASSWORD", "p")
    gateway = channels_from_env()["sms"]
    assert (gateway.api_key, gateway.basic_auth) == (None, ("u", "p"))


def test_backoff_grows_is_capped_has_jitter_and_ends():
    policy = RetryPolicy(initial_seconds=30, max_seconds=600, max_attempts=6)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    for attempt in range(1, 6):
        base = min(30 * 2 ** (attempt - 1), 600)
        delays = {(policy.next_attempt_at(attempt, now) - now).total_seconds() for _ in range(30)}
        assert all(base <= d <= min(base + 30, 600) for d in delays), (attempt, delays)
        if base + 30 <= 600:
            assert len(delays) > 1        # jittered, so a failed batch does not retry in lockstep
    assert policy.next_attempt_at(6, now) is None


def test_retry_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("NOTIFY_RETRY_INITIAL_SECONDS", "5")
    monkeypatch.setenv("NOTIFY_RETRY_MAX_SECONDS", "20")
    monkeypatch.setenv("NOTIFY_MAX_ATTEMPTS", "3")
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert now + timedelta(seconds=20) >= next_attempt_at(2, now) >= now + timedelta(seconds=10)
    assert next_attempt_at(3, now) is None


def test_logs_mask_phones_and_id_numbers(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lanling.notify.channels")
    LocalSmsSink(tmp_path / "sms.jsonl").send(sms("evt-1:c1:sms"))
    email = OutgoingMessage("evt-1:M-1:email", "zhangjg@lanling.gov.cn", "主题", "正文")
    LocalSink(tmp_path / "email.jsonl", "email").send(email)
    assert "139****5678" in caplog.text and PHONE not in caplog.text
    assert "z***@lanling.gov.cn" in caplog.text and "zhangjg" not in caplog.text


@pytest.mark.parametrize("detail, masked", [
    ("用户13912345678不存在", "用户139****5678不存在"),
    ("证件371324199001011234无效", "证件3713**********1234无效"),
])
def test_provider_answers_are_masked_before_they_reach_logs_or_history(detail, masked):
    assert SendResult.of(Outcome.PERMANENT_FAILURE, detail).detail == masked
