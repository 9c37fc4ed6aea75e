"""The whole web server on 127.0.0.1: PostgreSQL, an instance split into two
processes, Squid in front of them and HAProxy in front of Squid, each running
what the cube's commands wrote (see harness/stack.py).

The tests kill and restart the second process: they run in file order and
leave both processes up.
"""

import json
import os
import signal
import threading
import time
import uuid

import pytest

from harness.stack import Stack
from harness.visitor import Visitor
from images import image_bytes

EDITOR = ("editor", "editor-password")
# HAProxy checks every 5 s and takes a server out after 3 failures, back after 2 successes.
STATE_TIMEOUT = 45
IMAGE = image_bytes("png", "teal", (12, 9))
LOGGED_IN_MARK = f"boxmenu_{EDITOR[0]}"
# The test cube pauses 2 s inside the transaction of an edit that sets this title.
HOLD_TITLE = "hold-replacement"

# Run in `cubicweb-ctl shell`, which provides `cnx` and `commit`.
SETUP_SCRIPT = """
import json
from cubicweb import Binary

users = cnx.find("CWGroup", name="users").one()
cnx.create_entity("CWUser", login={login!r}, upassword={password!r}, in_group=users)
image = cnx.create_entity(
    "File", data=Binary({image!r}), data_name="stack.png", data_format="image/png",
    title="stack image",
)
document = cnx.create_entity(
    "File", data=Binary(b"draft"), data_name="draft.txt", data_format="text/plain",
    title="draft",
)
commit()
url = image.cw_adapt_to("IDownloadable").download_url()
print("RESULT", json.dumps({{"image": url, "document": document.eid}}))
"""


@pytest.fixture(scope="module")
def stack(instance_root):
    stack = Stack(instance_root, cubes="haops,haopstest")
    try:
        stack.build()
        output = stack.template.shell(
            SETUP_SCRIPT.format(login=EDITOR[0], password=EDITOR[1], image=IMAGE)
        )
        result = next(line for line in output.splitlines() if line.startswith("RESULT "))
        stack.fixtures = json.loads(result.removeprefix("RESULT "))
        stack.start()
        states = stack.wait_for_servers({1: "UP", 2: "UP"}, STATE_TIMEOUT)
        assert set(states.values()) == {"UP"}, f"{states}\n{stack.haproxy.output()}"
        yield stack
    finally:
        stack.destroy()


def hostname_of(stack, index):
    """Return the status and the instance line of monitor_hostname on Squid port *index*."""
    reply = Visitor(stack.squid_ports[index - 1]).get("/view?vid=monitor_hostname")
    lines = reply.text.splitlines()
    return reply.status, lines[1] if len(lines) > 1 else reply.text


def kill_process(stack, index):
    """Kill process *index* at once, as a crash would."""
    process = stack.copies[index - 1].process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def restart_process(stack, index):
    stack.stop_process(index)
    stack.start_process(index)


def document_title(stack):
    rows = stack.template.sql(
        "SELECT cw_title FROM cw_file WHERE cw_eid = ?", (stack.fixtures["document"],)
    )
    return rows[0][0]


def edit_title(visitor, eid, title):
    fields = [
        ("eid", str(eid)),
        (f"__type:{eid}", "File"),
        (f"_cw_entity_fields:{eid}", "title-subject"),
        (f"title-subject:{eid}", title),
        ("__maineid", str(eid)),
        ("__form_id", "edition"),
    ]
    return visitor.post_form("/edit", fields)


def test_each_squid_port_reaches_its_process(stack):
    assert hostname_of(stack, 1) == (200, "instance: stack-1")
    assert hostname_of(stack, 2) == (200, "instance: stack-2")


def test_visitors_denied_monitoring_at_haproxy(stack):
    reply = Visitor(stack.haproxy_port).get("/view?vid=monitor_hostname")
    assert reply.status == 403
    assert "stack-" not in reply.text


def test_image_served_from_cache_second_time(stack):
    path = stack.fixtures["image"].removeprefix(stack.url)
    first = Visitor(stack.haproxy_port).get(path)
    second = Visitor(stack.haproxy_port).get(path)

    assert path.startswith("/file/"), path
    assert (first.status, second.status) == (200, 200)
    assert first.body == second.body == IMAGE
    assert first.headers["X-Cache"].startswith("MISS"), first.headers
    assert second.headers["X-Cache"].startswith("HIT"), second.headers


def test_session_follows_user_across_processes(stack):
    visitor = Visitor(stack.squid_ports[0])
    visitor.log_in(*EDITOR)
    on_first = visitor.get("/")
    visitor.port = stack.squid_ports[1]
    on_second = visitor.get("/")
    stranger = Visitor(stack.squid_ports[1]).get("/")

    assert (on_first.status, on_second.status) == (200, 200)
    assert LOGGED_IN_MARK in on_first.text
    assert LOGGED_IN_MARK in on_second.text
    # The logged-in pages were never handed to someone else.
    assert stranger.status == 200
    assert LOGGED_IN_MARK not in stranger.text
    assert stack.template.sql("SELECT COUNT(*) FROM cw_cwsession")[0][0] >= 1


def test_logout_ends_session_everywhere(stack):
    visitor = Visitor(stack.squid_ports[0])
    visitor.log_in(*EDITOR)
    copied = Visitor(stack.squid_ports[1])
    copied.cookies = dict(visitor.cookies)

    visitor.get("/logout")
    replayed = copied.get("/")

    # The session row is gone: cookies copied before the logout are worthless.
    assert replayed.status == 200
    assert LOGGED_IN_MARK not in replayed.text


def test_port_fails_over_while_process_down(stack):
    kill_process(stack, 2)
    try:
        # A URL never requested before, so that Squid must fetch it.
        probe = f"/view?vid=list&rql=Any+X+WHERE+X+is+CWGroup&probe={uuid.uuid4().hex}"
        page = Visitor(stack.squid_ports[1]).get(probe)
        monitoring_status, _ = hostname_of(stack, 2)
        states = stack.wait_for_servers({2: "DOWN"}, STATE_TIMEOUT)
        restart_process(stack, 2)
        states_after = stack.wait_for_servers({2: "UP"}, STATE_TIMEOUT)
    finally:
        if stack.copies[1].process is None or stack.copies[1].process.poll() is not None:
            restart_process(stack, 2)

    # The client gets one 200 response: Squid's retry on process 1 stays invisible.
    assert page.status == 200, page.text[:300]
    assert page.headers["X-Cache"].startswith("MISS")
    # The monitoring URL stays on its process: HAProxy and Nagios see it down.
    assert monitoring_status >= 500
    assert states[stack.haproxy_server(2)] == "DOWN", states
    assert states_after[stack.haproxy_server(2)] == "UP", states_after
    assert hostname_of(stack, 2) == (200, "instance: stack-2")


def open_edit_transactions(stack):
    """Count the database connections idle inside a transaction that updated a title."""
    rows = stack.template.sql(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND query ILIKE '%%cw_title%%'"
    )
    return rows[0][0]


def test_edit_during_crash_all_or_nothing(stack):
    eid = stack.fixtures["document"]
    visitor = Visitor(stack.squid_ports[1])
    visitor.log_in(*EDITOR)
    replies = []
    posting = threading.Thread(target=lambda: replies.append(edit_title(visitor, eid, HOLD_TITLE)))

    posting.start()
    try:
        # Wait until the edit's transaction is open in process 2, then crash it.
        deadline = time.monotonic() + 20
        while open_edit_transactions(stack) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        open_transactions = open_edit_transactions(stack)
        kill_process(stack, 2)
        posting.join(timeout=60)
        title_after_crash = document_title(stack)

        # With process 2 down, Squid connects to process 1 instead.
        after = edit_title(visitor, eid, "edited while process 2 is down")
        title_after_failover = document_title(stack)
    finally:
        restart_process(stack, 2)

    assert open_transactions == 1
    crashed = replies[0]
    # Not applied, and the client receives an error status, not a redirection.
    assert crashed.status >= 500, (crashed.status, crashed.text[:300])
    assert title_after_crash == "draft"
    # Applied, and the client receives CubicWeb's redirection after an edit.
    assert after.status == 303, (after.status, after.text[:300])
    assert title_after_failover == "edited while process 2 is down"


@pytest.fixture(scope="module")
def cookie_stack(instance_root):
    """A second stack that keeps CubicWeb's default session factory, a signed cookie."""
    cookie_stack = Stack(os.path.join(instance_root, "cookie"), name="cookies",
                         database_sessions=False)
    try:
        cookie_stack.build()
        cookie_stack.template.shell(
            SETUP_SCRIPT.format(login=EDITOR[0], password=EDITOR[1], image=IMAGE)
        )
        cookie_stack.start()
        yield cookie_stack
    finally:
        cookie_stack.destroy()


def test_cookie_sessions_cross_processes_but_survive_logout(cookie_stack):
    visitor = Visitor(cookie_stack.squid_ports[0])
    visitor.log_in(*EDITOR)
    visitor.port = cookie_stack.squid_ports[1]
    on_second = visitor.get("/")
    copied = Visitor(cookie_stack.squid_ports[0])
    copied.cookies = dict(visitor.cookies)
    visitor.get("/logout")
    after_logout = visitor.get("/")
    replayed = copied.get("/")

    # The shared secrets make the signed cookies valid in every process.
    assert LOGGED_IN_MARK in on_second.text
    assert cookie_stack.template.sql("SELECT COUNT(*) FROM cw_cwsession")[0][0] == 0
    assert LOGGED_IN_MARK not in after_logout.text
    # Nothing on the server ends the session: cookies copied before the
    # logout still log in until the ticket expires.
    assert LOGGED_IN_MARK in replayed.text
