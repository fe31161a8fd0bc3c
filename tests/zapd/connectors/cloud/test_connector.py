"""The cloud connector against the fake Graph API: start, sends of every kind, Meta's errors."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.enums import MessageType, SessionStatus
from tests.fakes.graph_api import FakeGraph
from zapd.connectors.base import OutboundMessage, SendError
from zapd.connectors.cloud.connector import CloudConnector, CloudSendError
from zapd.connectors.cloud.graph import CloudSettings, GraphClient, GraphError
from zapd.connectors.cloud.payloads import build, buttons_fit, list_fits
from zapd.connectors.events import AnyEngineEvent, StatusEvent

TO = "5511987654321@s.whatsapp.net"


class Recorder:
    def __init__(self) -> None:
        self.events: list[AnyEngineEvent] = []

    async def __call__(self, event: AnyEngineEvent) -> None:
        self.events.append(event)

    def statuses(self) -> list[tuple[SessionStatus, str | None]]:
        return [(e.status, e.reason) for e in self.events if isinstance(e, StatusEvent)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    graph = await FakeGraph().start()
    try:
        yield graph
    finally:
        await graph.stop()


def settings(fake: FakeGraph, **kw: object) -> CloudSettings:
    values: dict[str, object] = {
        "phone_number_id": fake.phone_number_id,
        "access_token": fake.access_token,
        "business_account_id": fake.waba_id,
        "app_secret": fake.app_secret,
        "base_url": fake.url,
        "api_version": "v26.0",
    }
    values.update(kw)
    return CloudSettings.from_config(values)


async def started(fake: FakeGraph, **kw: object) -> tuple[CloudConnector, Recorder]:
    rec = Recorder()
    conn = CloudConnector(uuid.uuid4(), settings(fake, **kw), rec)
    await conn.start()
    return conn, rec


def text(body: str, key: str | None = None, to: str = TO) -> OutboundMessage:
    return OutboundMessage(uuid.uuid4(), to, MessageType.TEXT, body=body, idempotency_key=key)


async def test_start_checks_the_token_and_learns_the_number(fake: FakeGraph) -> None:
    conn, rec = await started(fake)
    assert conn.connected
    last = [e for e in rec.events if isinstance(e, StatusEvent)][-1]
    assert last.status is SessionStatus.CONNECTED and last.phone == "+551140001000"
    await conn.stop()
    assert rec.statuses()[-1] == (SessionStatus.DISCONNECTED, "stopped")


@pytest.mark.parametrize(("tier", "in_flight"), [(80, 32), (1000, 64), (1, 1)])
def test_the_outbox_lane_is_told_the_numbers_pace(
    fake: FakeGraph, tier: float, in_flight: int
) -> None:
    conn = CloudConnector(uuid.uuid4(), settings(fake, throughput_per_second=tier), Recorder())
    assert (conn.rate_per_second, conn.jitter_ms) == (tier, 0)
    # Enough sends in flight to reach the tier over a slow round trip (capped).
    assert conn.sends_in_flight == in_flight


async def test_bad_token_is_an_error_status_naming_190(fake: FakeGraph) -> None:
    conn, rec = await started(fake, access_token="EAAG-revoked")
    assert not conn.connected
    state, reason = rec.statuses()[-1]
    assert state is SessionStatus.ERROR and reason is not None and "190" in reason
    assert "EAAG" not in reason  # the token never shows in a reason
    await conn.stop()


async def test_sends_text_and_returns_the_wamid(fake: FakeGraph) -> None:
    conn, _ = await started(fake)
    wamid = await conn.send(text("Olá!"))
    assert wamid.startswith("wamid.")
    (sent,) = fake.sent
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511987654321",
        "type": "text",
        "text": {"body": "Olá!", "preview_url": False},
    }
    await conn.stop()


async def test_same_idempotency_key_sends_once(fake: FakeGraph) -> None:
    conn, _ = await started(fake)
    first = await conn.send(text("uma vez", key="msg:1"))
    assert await conn.send(text("uma vez", key="msg:1")) == first
    assert len(fake.sent) == 1
    await conn.stop()


async def test_media_is_uploaded_then_sent_by_id(fake: FakeGraph, tmp_path: Path) -> None:
    conn, _ = await started(fake)
    pdf = tmp_path / "ab" / ("c" * 64)
    pdf.parent.mkdir()
    pdf.write_bytes(b"%PDF-1.4 fake")
    msg = OutboundMessage(
        uuid.uuid4(),
        TO,
        MessageType.DOCUMENT,
        body="segue o laudo",
        media_path=str(pdf),
        media_mime="application/pdf",
        media_filename="laudo.pdf",
        quoted_wa_message_id="wamid.Q",
    )
    await conn.send(msg)
    (media_id,) = fake.uploads
    assert fake.uploads[media_id] == (b"%PDF-1.4 fake", "application/pdf", "laudo.pdf")
    (sent,) = fake.sent
    assert sent["type"] == "document"
    assert sent["document"] == {"id": media_id, "caption": "segue o laudo", "filename": "laudo.pdf"}
    assert sent["context"] == {"message_id": "wamid.Q"}
    await conn.send(msg)  # the same file again: no second upload
    assert len(fake.uploads) == 1 and len(fake.sent) == 2
    await conn.stop()


async def test_graph_errors_map_to_retryable_or_permanent(fake: FakeGraph) -> None:
    conn, _ = await started(fake, pair_burst=100)
    for code, transient in [(130429, True), (131056, True), (131047, False), (100, False)]:
        fake.fail_next(code)
        with pytest.raises(CloudSendError) as info:
            await conn.send(text(f"erro {code}"))
        assert info.value.transient is transient, code
        assert info.value.code == code
        assert str(info.value).startswith(str(code))
        assert info.value.retry_after is None  # Meta's limits spend an attempt
    fake.fail_next(None, status=503)
    with pytest.raises(CloudSendError) as info:
        await conn.send(text("5xx"))
    assert info.value.transient and info.value.code is None
    fake.fail_next(131047)
    with pytest.raises(SendError) as err:
        await conn.send(text("fora da janela"))
    assert "Re-engagement message" in str(err.value) and "24 hours" in str(err.value)
    await conn.send(text("depois"))  # the failures were one-offs
    assert fake.sent[-1]["text"]["body"] == "depois"
    await conn.stop()


async def test_unreachable_graph_is_transient(fake: FakeGraph) -> None:
    client = GraphClient(settings(fake, base_url="http://127.0.0.1:9"))
    with pytest.raises(GraphError) as info:
        await client.phone_number()
    assert info.value.retryable
    await client.aclose()


async def test_pacing_per_recipient_hands_back_without_an_attempt(fake: FakeGraph) -> None:
    conn, _ = await started(fake, pair_burst=2, pair_interval_seconds=5)
    await conn.send(text("1"))
    await conn.send(text("2"))
    with pytest.raises(CloudSendError) as info:
        await conn.send(text("3"))
    assert info.value.transient and info.value.retry_after is not None
    assert 4 < info.value.retry_after <= 5
    await conn.send(text("outra pessoa", to="5511911112222@s.whatsapp.net"))  # not paced
    assert len(fake.sent) == 3
    await conn.stop()


async def test_templates_lists_only_approved(fake: FakeGraph) -> None:
    conn, _ = await started(fake)
    names = [t["name"] for t in await conn.templates()]
    assert names == ["boas_vindas", "pedido_pronto"]
    await conn.stop()


async def test_payloads_interactive_template_and_bsuid(fake: FakeGraph) -> None:
    rows = [{"id": str(i), "title": f"Setor {i}"} for i in range(1, 4)]
    lst = {"list": {"body": "Escolha:", "button": "Ver setores", "rows": rows}}
    conn, _ = await started(fake)
    await conn.send(
        OutboundMessage(uuid.uuid4(), TO, MessageType.TEXT, body="menu", interactive=lst)
    )
    assert fake.sent[-1]["interactive"] == {
        "type": "list",
        "body": {"text": "Escolha:"},
        "action": {"button": "Ver setores", "sections": [{"rows": rows}]},
    }
    buttons = {
        "buttons": {
            "body": "Voltar?",
            "buttons": [{"id": "1", "title": "Sim"}, {"id": "2", "title": "Não"}],
        }
    }
    await conn.send(
        OutboundMessage(
            uuid.uuid4(), "BR.15028374650193@bsuid", MessageType.TEXT, body="?", interactive=buttons
        )
    )
    sent = fake.sent[-1]
    assert sent["recipient"] == "BR.15028374650193" and "to" not in sent
    assert [b["reply"]["id"] for b in sent["interactive"]["action"]["buttons"]] == ["1", "2"]
    tpl = {"name": "boas_vindas", "language": "pt_BR", "parameters": ["Maria"]}
    await conn.send(OutboundMessage(uuid.uuid4(), TO, MessageType.TEXT, body="x", template=tpl))
    assert fake.sent[-1]["template"] == {
        "name": "boas_vindas",
        "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}],
    }
    await conn.stop()


def test_interactive_limits() -> None:
    rows = [{"id": str(i), "title": f"Setor {i}"} for i in range(1, 11)]
    assert list_fits("Escolha", "Ver setores", rows)
    assert not list_fits("Escolha", "Ver setores", [*rows, {"id": "11", "title": "Onze"}])
    assert not list_fits("Escolha", "Ver setores", [{"id": "1", "title": "x" * 25}])
    assert not list_fits("Escolha", "Um botão longo demais!", rows[:1])
    three = [{"id": str(i), "title": f"B{i}"} for i in range(3)]
    assert buttons_fit("Pergunta", three)
    assert not buttons_fit("Pergunta", [*three, {"id": "9", "title": "B9"}])
    assert not buttons_fit("Pergunta", [{"id": "1", "title": "x" * 21}])
    assert build(text("a" * 5000))["text"]["body"] == "a" * 4096


async def test_send_in_doubt_asks_the_stored_statuses_then_holds_then_resends(
    fake: FakeGraph,
) -> None:
    """The policy of zapd.connectors.cloud.connector for a send in doubt after a crash."""
    calls: list[str] = []
    answer: dict[str, str | None] = {"doubt:1": None}

    async def lookup(session_id: uuid.UUID, key: str) -> str | None:
        calls.append(key)
        if key == "doubt:boom":
            raise OSError("database away")
        return answer.get(key)

    rec = Recorder()
    conn = CloudConnector(
        uuid.uuid4(), settings(fake, in_doubt_hold_seconds=0.3), rec, in_doubt_lookup=lookup
    )
    await conn.start()
    first = text("Oi", "doubt:1")
    assert "biz_opaque_callback_data" not in build(text("Oi"))  # no key, nothing to echo
    assert build(first)["biz_opaque_callback_data"] == "doubt:1"
    doubt = dataclasses.replace(first, in_doubt=True)

    # Nothing stored yet: held (no attempt spent), asked again, then sent again.
    with pytest.raises(CloudSendError) as held:
        await conn.send(doubt)
    assert held.value.transient and held.value.retry_after and "in doubt" in str(held.value)
    assert fake.sent == []
    await asyncio.sleep(0.35)
    resent = await conn.send(first)  # the row came back PENDING: still in doubt here
    assert len(fake.sent) == 1 and calls == ["doubt:1", "doubt:1"]
    assert await conn.send(doubt) == resent  # known in this process now: no lookup
    assert calls == ["doubt:1", "doubt:1"]

    # A status webhook carrying the key is stored: its wamid, nothing sent.
    answer["doubt:2"] = "wamid.FROM-STATUS"
    second = dataclasses.replace(text("Oi de novo", "doubt:2"), in_doubt=True)
    assert await conn.send(second) == "wamid.FROM-STATUS"
    assert len(fake.sent) == 1

    # The lookup cannot run: held like any transient failure, nothing sent.
    with pytest.raises(CloudSendError) as away:
        await conn.send(dataclasses.replace(text("x", "doubt:boom"), in_doubt=True))
    assert away.value.transient and away.value.retry_after and "OSError" in str(away.value)
    assert len(fake.sent) == 1

    # A hold of 0: at-least-once at once.
    conn.settings = settings(fake, in_doubt_hold_seconds=0)
    await conn.send(dataclasses.replace(text("já", "doubt:3"), in_doubt=True))
    assert len(fake.sent) == 2
    await conn.stop()
