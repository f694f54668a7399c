"""The stand-in answers as HelpCrunch does (shared/helpcrunch-api.md), so tests against it mean something."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

from airflow_provider_helpcrunch.testing import Fault, HelpCrunchStandIn
from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from tests.helpers import API_KEY, REPO

pytestmark = pytest.mark.integration


class TestAuth:
    @pytest.mark.parametrize("header", [None, "Bearer wrong", API_KEY, f"Basic {API_KEY}"])
    def test_bad_or_missing_key_is_401(self, standin, header):
        headers = {"Authorization": header} if header else {}
        response = requests.get(f"{standin.base_url}/chats", headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "unauthorized"


class TestMarkRead:
    def test_read_by_agent_and_customer_update_the_chat(self, standin, api):
        chat_id = next(iter(standin.chats))
        response = api.put(f"{api.base}/chats/readByAgent", json={"id": chat_id, "read": True}, timeout=5)
        assert response.status_code == 200
        assert response.json()["id"] == chat_id
        assert response.json()["readByAgent"] is True
        api.put(f"{api.base}/chats/readByCustomer", json={"id": chat_id, "read": False}, timeout=5)
        assert standin.chat(chat_id)["readByAgent"] is True
        assert standin.chat(chat_id)["readByCustomer"] is False

    def test_unknown_chat_is_404_with_helpcrunch_body(self, api):
        response = api.put(f"{api.base}/chats/readByAgent", json={"id": 1, "read": True}, timeout=5)
        assert response.status_code == 404
        assert response.json() == {
            "errors": [
                {"code": "invalid_request", "message": "Invalid request"},
                {"code": "not_found", "message": 'Chat for ID "1" was not found'},
            ]
        }

    @pytest.mark.parametrize(
        "body", [{"read": True}, {"id": "5200", "read": True}, {"id": 5200}, {"id": 5200, "read": "yes"}, [1]]
    )
    def test_bad_body_is_400(self, api, body):
        response = api.put(f"{api.base}/chats/readByAgent", json=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "invalid_request"

    def test_malformed_json_is_400(self, api):
        response = api.put(f"{api.base}/chats/readByAgent", data=b"{nope", timeout=5)
        assert response.status_code == 400
        assert "errors" in response.json()


class TestReading:
    def test_get_chat_is_bare(self, standin, api):
        chat_id = next(iter(standin.chats))
        body = api.get(f"{api.base}/chats/{chat_id}", timeout=5).json()
        assert body["id"] == chat_id
        assert "data" not in body
        assert api.get(f"{api.base}/chats/1", timeout=5).status_code == 404

    def test_list_pages_are_capped_at_100(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=250, api_key=API_KEY, requests_per_minute=None)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        seen = []
        for offset in (0, 100, 200):
            body = requests.get(
                f"{standin.base_url}/chats",
                params={"offset": offset, "limit": 500},
                headers=headers,
                timeout=5,
            ).json()
            assert body["meta"]["total"] == 250
            seen += [chat["id"] for chat in body["data"]]
        assert len(seen) == 250
        assert len(set(seen)) == 250

    def test_list_sorts(self, api):
        body = api.get(
            f"{api.base}/chats", params={"sort": "chats.createdAt", "order": "desc"}, timeout=5
        ).json()
        created = [timestamp_seconds(chat["createdAt"]) for chat in body["data"]]
        assert created == sorted(created, reverse=True)
        assert api.get(f"{api.base}/chats", params={"sort": "chats.nope"}, timeout=5).status_code == 400

    def test_search_filters(self, standin, api):
        chats = standin.chats.values()
        closed = sorted(c["id"] for c in chats if c["status"] == "closed")
        body = api.post(
            f"{api.base}/chats/search",
            json={"filter": [{"field": "chats.status", "operator": "=", "value": "closed"}]},
            timeout=5,
        ).json()
        assert sorted(c["id"] for c in body["data"]) == closed
        assert body["meta"]["total"] == len(closed)

    def test_search_on_timestamps_in_every_format(self, standin, api):
        chats = list(standin.chats.values())
        cut = sorted(timestamp_seconds(c["createdAt"]) for c in chats)[len(chats) // 2]
        expected = sorted(c["id"] for c in chats if timestamp_seconds(c["createdAt"]) < cut)
        body = api.post(
            f"{api.base}/chats/search",
            json={"filter": [{"field": "chats.createdAt", "operator": "<", "value": int(cut)}]},
            timeout=5,
        ).json()
        assert sorted(c["id"] for c in body["data"]) == expected

    def test_search_or(self, standin, api):
        chats = standin.chats.values()
        expected = sorted(c["id"] for c in chats if c["status"] in ("new", "pending"))
        body = api.post(
            f"{api.base}/chats/search",
            json={
                "filter": [
                    {"field": "chats.status", "operator": "=", "value": "new"},
                    {"field": "chats.status", "operator": "=", "value": "pending"},
                ],
                "comparison": "OR",
            },
            timeout=5,
        ).json()
        assert sorted(c["id"] for c in body["data"]) == expected

    @pytest.mark.parametrize(
        "entry",
        [
            {"field": "chats.nope", "operator": "=", "value": 1},
            {"field": "chats.status", "operator": "==", "value": "closed"},
            {"field": "chats.closedAt", "operator": "<", "value": "yesterday"},
            {"field": "chats.status", "operator": "="},
        ],
    )
    def test_search_refuses_bad_filters(self, api, entry):
        response = api.post(f"{api.base}/chats/search", json={"filter": [entry]}, timeout=5)
        assert response.status_code == 400

    def test_unknown_route_is_a_bare_404(self, api):
        response = api.get(f"{api.base}/nothing/here", timeout=5)
        assert response.status_code == 404
        with pytest.raises(ValueError):  # noqa: PT011 - not JSON at all
            response.json()


class TestRateLimit:
    def test_sliding_window(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(api_key=API_KEY, requests_per_minute=5, window=1.0)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        statuses = [requests.get(f"{standin.base_url}/chats", headers=headers, timeout=5) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200] * 5 + [429]
        assert statuses[-1].json()["errors"][-1]["code"] == "too_many_requests"
        assert "Retry-After" not in statuses[-1].headers
        time.sleep(1.1)
        assert requests.get(f"{standin.base_url}/chats", headers=headers, timeout=5).status_code == 200

    @pytest.mark.parametrize(("option", "expected"), [(True, {"1"}), (7, {"7"})])
    def test_retry_after_header(self, make_helpcrunch_standin, option, expected):
        standin = make_helpcrunch_standin(
            api_key=API_KEY, requests_per_minute=1, window=1.0, retry_after=option
        )
        headers = {"Authorization": f"Bearer {API_KEY}"}
        requests.get(f"{standin.base_url}/chats", headers=headers, timeout=5)
        response = requests.get(f"{standin.base_url}/chats", headers=headers, timeout=5)
        assert response.status_code == 429
        assert {response.headers["Retry-After"]} == expected


class TestFaults:
    def test_fault_on_the_nth_request(self, standin, api):
        standin.inject(Fault(status=503), request=standin.request_count + 2)
        codes = [api.get(f"{api.base}/chats", timeout=5).status_code for _ in range(3)]
        assert codes == [200, 503, 200]

    def test_fault_on_attempts_at_a_chat(self, standin, api):
        chat_id = next(iter(standin.chats))
        standin.inject(Fault(status=500), chat_id=chat_id, attempts=(1, 3))
        body = {"id": chat_id, "read": True}
        codes = [api.put(f"{api.base}/chats/readByAgent", json=body, timeout=5).status_code for _ in range(4)]
        assert codes == [500, 200, 500, 200]

    def test_drop(self, standin, api):
        standin.inject(Fault(drop=True), request=standin.request_count + 1)
        with pytest.raises(requests.ConnectionError):
            api.get(f"{api.base}/chats", timeout=5)
        assert standin.requests[-1].status is None

    def test_hang_outlasts_a_client_timeout(self, standin, api):
        standin.inject(Fault(hang=3), request=standin.request_count + 1)
        with pytest.raises(requests.ReadTimeout):
            api.get(f"{api.base}/chats", timeout=0.5)

    def test_stop_wakes_a_hung_request(self, standin):
        standin.inject(Fault(hang=60), request=standin.request_count + 1)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(requests.get(f"{standin.base_url}/chats", headers=headers, timeout=30))
            except requests.RequestException as err:
                outcome.append(err)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        while not standin.request_count:
            time.sleep(0.01)
        standin.stop()
        caller.join(timeout=10)
        assert not caller.is_alive()
        assert isinstance(outcome[0], requests.ConnectionError)

    def test_request_log(self, standin, api):
        chat_id = next(iter(standin.chats))
        standin.clear_requests()
        api.put(f"{api.base}/chats/readByAgent", json={"id": chat_id, "read": True}, timeout=5)
        (record,) = standin.requests
        assert (record.method, record.path, record.body, record.status, record.chat_id) == (
            "PUT",
            "/v1/chats/readByAgent",
            {"id": chat_id, "read": True},
            200,
            chat_id,
        )


class TestData:
    def test_seeded_chats_are_reproducible(self):
        first = HelpCrunchStandIn(chats=40, seed=3).chats
        assert first == HelpCrunchStandIn(chats=40, seed=3).chats
        assert first != HelpCrunchStandIn(chats=40, seed=4).chats

    def test_timestamps_come_in_helpcrunch_formats(self):
        stamps = [chat["createdAt"] for chat in HelpCrunchStandIn(chats=60).chats.values()]
        assert any(isinstance(s, int) for s in stamps)
        assert any(isinstance(s, str) and s.isdigit() for s in stamps)
        assert any(isinstance(s, str) and s.endswith(".000") for s in stamps)

    def test_add_and_remove_chats(self, standin, api):
        added = standin.add_chat(status="closed", readByAgent=False)
        assert standin.chat(added["id"])["status"] == "closed"
        assert api.get(f"{api.base}/chats/{added['id']}", timeout=5).status_code == 200
        standin.remove_chat(added["id"])
        assert api.get(f"{api.base}/chats/{added['id']}", timeout=5).status_code == 404

    def test_concurrent_clients(self, standin):
        ids = list(standin.chats)
        errors: list[Exception] = []

        def worker(chunk: list[int]) -> None:
            with requests.Session() as session:
                session.headers["Authorization"] = f"Bearer {API_KEY}"
                for chat_id in chunk:
                    try:
                        r = session.put(
                            f"{standin.base_url}/chats/readByAgent",
                            json={"id": chat_id, "read": True},
                            timeout=5,
                        )
                        r.raise_for_status()
                    except Exception as err:  # pragma: no cover - reported below
                        errors.append(err)

        threads = [threading.Thread(target=worker, args=(ids[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert all(chat["readByAgent"] for chat in standin.chats.values())
        assert len(standin.requests) == len(ids)
        assert [r.number for r in standin.requests] == sorted(r.number for r in standin.requests)


def start_command_line() -> tuple[subprocess.Popen, str, dict]:
    """The stand-in's command line with 3 chats: the process, its banner and its connection."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_helpcrunch.testing", "--chats", "3", "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = process.stdout.readline()
    export = process.stdout.readline()
    assert export.startswith("export AIRFLOW_CONN_HELPCRUNCH_DEFAULT="), export
    return process, banner, json.loads(export.split("=", 1)[1].strip().strip("'"))


def test_command_line_prints_the_connection_and_serves():
    process, banner, conn = start_command_line()
    try:
        assert "serving 3 chats" in banner
        assert conn["conn_type"] == "helpcrunch"
        response = requests.get(
            f"{conn['host']}/chats", headers={"Authorization": f"Bearer {conn['password']}"}, timeout=5
        )
        assert response.json()["meta"]["total"] == 3
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_command_line_prints_a_line_per_request_and_the_summary_on_request_and_at_exit():
    process, _, conn = start_command_line()
    try:
        headers = {"Authorization": f"Bearer {conn['password']}"}
        chat_id = requests.get(f"{conn['host']}/chats", headers=headers, timeout=5).json()["data"][0]["id"]
        for marked in (chat_id, 1):
            body = {"id": marked, "read": True}
            requests.put(f"{conn['host']}/chats/readByAgent", json=body, headers=headers, timeout=5)
        lines = [process.stdout.readline() for _ in range(3)]
        assert "GET /v1/chats  -> 200" in lines[0]
        assert f"PUT /v1/chats/readByAgent  chat {chat_id}  -> 200" in lines[1]
        assert "PUT /v1/chats/readByAgent  chat 1  -> 404" in lines[2]
        process.send_signal(signal.SIGUSR1)
        asked = [process.stdout.readline() for _ in range(4)]
        assert asked[0].startswith("Traffic so far:")
        assert "requests       3 (0 answered 429, 1 other errors)" in asked[1]
        assert "requests/min" in asked[2]
        assert "busiest 60 s  3 requests (limit 120)" in asked[3]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "requests       3 (0 answered 429, 1 other errors)" in out  # the summary again, at exit


def test_fixture_works_from_a_users_own_test_file_once_opted_in(tmp_path):
    """What a user of the package writes in their own repository: one line in conftest.py takes the fixtures;
    without it, installing the provider loads nothing into pytest."""
    (tmp_path / "test_users_dag.py").write_text(
        textwrap.dedent(
            """
            from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator


            def test_marks_my_chats(helpcrunch_standin):
                chat = helpcrunch_standin.add_chat(status="closed", readByAgent=False)
                result = MarkChatReadOperator(task_id="mark", chat_ids=[chat["id"]]).execute({})
                assert result["marked"] == [chat["id"]]
                assert helpcrunch_standin.chat(chat["id"])["readByAgent"] is True
            """
        )
    )

    def pytest_run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    without = pytest_run()
    assert without.returncode != 0
    assert "fixture 'helpcrunch_standin' not found" in without.stdout
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["airflow_provider_helpcrunch.testing.pytest_plugin"]\n'
    )
    completed = pytest_run()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout
    assert str(REPO) not in completed.stdout.split("rootdir:")[-1].split("\n")[0]


class TestMessagesAndCustomers:
    def test_messages_newest_first_in_pages_of_at_most_100(self, standin, api):
        chat_id = standin.add_chat(id=9000)["id"]
        for n in range(150):
            standin.add_message(chat_id, createdAt=1_764_000_000 + n)
        first = api.get(f"{api.base}/chats/{chat_id}/messages", params={"limit": 500}).json()
        assert (len(first["data"]), first["total"]) == (100, 150)
        assert float(first["data"][0]["createdAt"]) == 1_764_000_149
        rest = api.get(f"{api.base}/chats/{chat_id}/messages", params={"offset": 100}).json()["data"]
        assert [float(m["createdAt"]) for m in rest] == [1_764_000_000 + n for n in range(49, -1, -1)]
        assert api.get(f"{api.base}/chats/1/messages").status_code == 404

    def test_seeded_chats_have_seeded_messages_up_to_their_last_one(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=20, api_key=API_KEY, requests_per_minute=None)
        for chat in standin.chats.values():
            messages = standin.messages(chat["id"])
            assert messages == standin.messages(chat["id"])  # the same every time
            # every chat has its last message, and its last-message fields are that message's
            newest = messages[0]
            assert float(newest["createdAt"]) == float(chat["lastMessageAt"])
            assert (newest["id"], newest["text"]) == (chat["lastMessageId"], chat["lastMessageText"])

    def test_a_new_message_moves_the_chat(self, standin, api):
        chat_id = next(iter(standin.chats))
        answer = api.post(f"{api.base}/messages", json={"chat": chat_id, "text": "Hello", "type": "message"})
        assert answer.status_code == 200
        chat = standin.chat(chat_id)
        created = answer.json()["createdAt"]
        assert chat["updatedAt"] == int(float(created))
        assert chat["lastMessageAt"] == created
        assert (chat["lastMessageText"], chat["lastMessageId"]) == ("Hello", answer.json()["id"])
        assert api.post(f"{api.base}/messages", json={"chat": chat_id}).status_code == 400
        assert api.post(f"{api.base}/messages", json={"chat": 1, "text": "x"}).status_code == 404

    def test_a_new_message_can_leave_updated_at_where_it_was(self, make_helpcrunch_standin, api):
        standin = make_helpcrunch_standin(
            chats=3, api_key=API_KEY, requests_per_minute=None, message_moves_updated_at=False
        )
        chat_id = next(iter(standin.chats))
        before = standin.chat(chat_id)["updatedAt"]
        message = standin.add_message(chat_id, text="Hi")
        assert standin.chat(chat_id)["updatedAt"] == before
        assert standin.chat(chat_id)["lastMessageAt"] == message["createdAt"]

    def test_customers_of_the_chats_paged_and_sorted(self, make_helpcrunch_standin, api):
        standin = make_helpcrunch_standin(chats=150, api_key=API_KEY, requests_per_minute=None)
        expected = {chat["customer"]["id"] for chat in standin.chats.values()}
        first = api.get(f"{standin.base_url}/customers", params={"sort": "customers.firstSeen"}).json()
        rest = api.get(f"{standin.base_url}/customers", params={"offset": 100}).json()
        assert first["total"] == len(expected)
        assert [c["firstSeen"] for c in first["data"]] == sorted(c["firstSeen"] for c in first["data"])
        assert len(first["data"]) == 100
        assert len(rest["data"]) == len(expected) - 100
        assert api.get(f"{standin.base_url}/customers", params={"sort": "name"}).status_code == 400

    def test_a_fault_at_a_path(self, standin, api):
        standin.inject(Fault(status=503), path="/v1/customers", attempts=2)
        statuses = [api.get(f"{api.base}/customers").status_code for _ in range(3)]
        assert statuses == [200, 503, 200]
