"""Failed sign-ins: counted per account and address, refused for a while past the limit, in the
database that every server process shares."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import Tenant
from tests.ui.conftest import csrf_of, user_email
from trapline.accounts.signin_throttle import SigninFailureWindow
from trapline.db.engine import Database
from trapline.ui.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_account_is_refused_after_its_limit_until_the_window_ends(database: Database):
    clock = Clock()
    throttle = LoginThrottle(database, per_account=3, per_address=100, window_seconds=60, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("a@example.com", "1.2.3.4") == 0
        throttle.failed("A@example.com ", "1.2.3.4")  # the same account however it is typed
    clock.now += 10
    assert throttle.retry_after("a@example.com", "1.2.3.4") == 50
    # Someone else, or the same person elsewhere, is not held up.
    assert throttle.retry_after("b@example.com", "1.2.3.4") == 0
    assert throttle.retry_after("a@example.com", "5.6.7.8") == 0
    clock.now += 50
    assert throttle.retry_after("a@example.com", "1.2.3.4") == 0


def test_an_address_guessing_many_accounts_is_refused(database: Database):
    throttle = LoginThrottle(database, per_account=100, per_address=5, window_seconds=60, clock=Clock())
    for n in range(5):
        throttle.failed(f"user{n}@example.com", "1.2.3.4")
    assert throttle.retry_after("anyone@example.com", "1.2.3.4") > 0
    assert throttle.retry_after("anyone@example.com", "9.9.9.9") == 0


def test_success_clears_the_accounts_failures(database: Database):
    throttle = LoginThrottle(database, per_account=2, per_address=100, window_seconds=60, clock=Clock())
    throttle.failed("a@example.com", "1.2.3.4")
    throttle.succeeded("a@example.com", "1.2.3.4")
    throttle.failed("a@example.com", "1.2.3.4")
    assert throttle.retry_after("a@example.com", "1.2.3.4") == 0


def test_the_form_says_when_to_try_again(client: TestClient, tenant: Tenant, database: Database):
    email = user_email(database, tenant.user_id)
    token = csrf_of(client.get("/login").text)
    for _ in range(10):
        wrong = client.post("/login", data={"email": email, "password": "wrong-one", "csrf_token": token})
        assert wrong.status_code == 400
    # Now even the right password waits: the guesser cannot tell it was right.
    answer = client.post("/login", data={"email": email, "password": "password123", "csrf_token": token})
    assert answer.status_code == 429
    assert re.search(r"Try again in 15 minutes", answer.text)
    assert 0 < int(answer.headers["retry-after"]) <= 900
    assert "trapline_session" not in answer.headers.get("set-cookie", "")


def test_two_servers_share_one_count(database: Database):
    clock = Clock()
    # Two throttles over one database: two server processes behind a load balancer.
    first, second = (
        LoginThrottle(database, per_account=4, per_address=100, window_seconds=60, clock=clock) for _ in "ab"
    )
    for throttle in (first, second, first, second):
        throttle.failed("a@example.com", "1.2.3.4")
    assert first.retry_after("a@example.com", "1.2.3.4") == 60
    assert second.retry_after("a@example.com", "1.2.3.4") == 60


def test_a_window_that_ended_restarts_at_one_and_old_rows_are_pruned(database: Database):
    clock = Clock()
    throttle = LoginThrottle(database, per_account=2, per_address=100, window_seconds=60, clock=clock)
    throttle.failed("a@example.com", "1.2.3.4")
    throttle.failed("a@example.com", "1.2.3.4")
    throttle.failed("gone@example.com", "9.9.9.9")
    assert throttle.retry_after("a@example.com", "1.2.3.4") == 60
    clock.now += 60
    throttle.failed("a@example.com", "1.2.3.4")  # a new window: one failure, under the limit
    assert throttle.retry_after("a@example.com", "1.2.3.4") == 0
    with database.session(write=False) as session:
        rows = session.execute(select(SigninFailureWindow.email, SigninFailureWindow.address)).all()
    assert sorted(rows) == [("", "1.2.3.4"), ("a@example.com", "1.2.3.4")]


def test_concurrent_failures_are_all_counted(database: Database):
    throttle = LoginThrottle(database, per_account=1000, per_address=1000, window_seconds=60)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: throttle.failed(f"user{n % 3}@example.com", "1.2.3.4"), range(60)))
    with database.session(write=False) as session:
        rows = session.execute(select(SigninFailureWindow.email, SigninFailureWindow.failures)).all()
    counts = {str(row[0]): int(row[1]) for row in rows}
    assert counts == {"": 60, "user0@example.com": 20, "user1@example.com": 20, "user2@example.com": 20}
