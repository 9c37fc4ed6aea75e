"""``cubicweb-ctl haops-config`` and the Squid, HAProxy and Apache configurations it writes.

The command runs as a real cubicweb-ctl process on instances created with
``cubicweb-ctl create`` (no database), whose per-process copies the tests
write themselves. Squid 5, HAProxy 2.6 and Apache 2.4 from Debian check the
files it writes. For the behaviour, the same pure functions write
configurations for stub HTTP backends on free ports of 127.0.0.1, and the
real programs run them there. Every server listens on 127.0.0.1 only and
stops at the end of its test, whether the test passed or failed.
"""

import contextlib
import gzip
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cubicweb_haops.deployment.apache import ApacheSettings, apache_config
from cubicweb_haops.deployment.haproxy import HAProxySettings, haproxy_config
from cubicweb_haops.deployment.instances import MARKER, copy_name
from cubicweb_haops.deployment.squid import SquidSettings, squid_config
from harness.apache import A2ENMOD, APACHE, DEBIAN_PACKAGE as APACHE_PACKAGE, ScratchApache
from harness.haproxy import HAPROXY, HAProxy
from harness.instance import Instance, set_option
from harness.network import free_port
from harness.squid import SQUID
from harness.squid_accelerator import AcceleratorSquid
from harness.stub_backend import StubBackend

SITE = "www.example.org"
PROCESS_PORTS = (8081, 8082)
HTTP_TIMEOUT = 10
# Seconds allowed for HAProxy's checks to see a backend go down or come up,
# with checks every CHECK_INTERVAL seconds and 3 failures to go down.
CHECK_INTERVAL = 1
STATE_TIMEOUT = 20
# Seconds allowed for Squid to use a restarted process again.
RECOVERY_TIMEOUT = 20
PARSE_TIMEOUT = 30
HOSTNAME_URL = "/view?vid=monitor_hostname"
COMPLAINT = re.compile(r"\b(FATAL|ERROR|WARNING|UPGRADE)\b")


def require(program, package):
    """Fail with the Debian package to install unless *program* is executable."""
    if not os.access(program, os.X_OK):
        pytest.fail(
            f"{program} is missing: install Debian's {package} package"
            f" (apt-get install {package}, or make system-packages as root)"
        )


# Instances and the command -------------------------------------------------------


def create_instance(root, name, base_url=None):
    """Create instance *name* without a database, with *base_url* if given."""
    instance = Instance(root, name, "haops")
    for sub in ("etc", "data", "run"):
        (instance.root / sub).mkdir(parents=True, exist_ok=True)
    instance.ctl("create", "haops", name, "--automatic", "--no-db-create")
    if base_url is not None:
        set_option(instance.conf, "base-url", base_url)
    return instance


def add_copies(instance, ports):
    """Make copy k of *instance* serve on ports[k - 1], as haops-split records copies."""
    for index, port in enumerate(ports, 1):
        apphome = instance.root / "etc" / copy_name(instance.name, index)
        shutil.copytree(instance.apphome, apphome)
        set_option(apphome / "all-in-one.conf", "port", str(port))
        (apphome / MARKER).write_text(json.dumps({"template": instance.name, "index": index}))


@pytest.fixture(scope="module")
def instances(instance_root):
    """Instances by name, each with two copies except where noted below.

    "site" has a base-url, "bare" has no copies and "nourl" no base-url. The
    processes of "lan" listen on 192.0.2.20, those of "named" on a host name.
    The copies of "clash" share a port, and the second copy of "noport" has none.
    """
    site = create_instance(instance_root, "site", f"https://{SITE}/")
    add_copies(site, PROCESS_PORTS)
    bare = create_instance(instance_root, "bare", f"https://{SITE}/")
    nourl = create_instance(instance_root, "nourl")
    add_copies(nourl, PROCESS_PORTS)
    lan = create_instance(instance_root, "lan", f"http://{SITE}:8080/")
    set_option(lan.conf, "interface", "192.0.2.20")
    add_copies(lan, PROCESS_PORTS)
    named = create_instance(instance_root, "named", f"https://{SITE}/")
    set_option(named.conf, "interface", "web1.example.org")
    add_copies(named, PROCESS_PORTS)
    clash = create_instance(instance_root, "clash", f"https://{SITE}/")
    add_copies(clash, (8081, 8081))
    noport = create_instance(instance_root, "noport", f"https://{SITE}/")
    add_copies(noport, PROCESS_PORTS)
    set_option(noport.root / "etc" / copy_name("noport", 2) / "all-in-one.conf", "port", "")
    return {"site": site, "bare": bare, "nourl": nourl}


def haops_config(instances, *args):
    """Run ``cubicweb-ctl haops-config`` with *args* in the instances' directories."""
    return instances["site"].ctl("haops-config", *args, check=False, timeout=120)


def generate(instances, *args):
    """Return the configuration that haops-config writes for *args*, failing on an error."""
    result = haops_config(instances, *args)
    assert result.returncode == 0, f"haops-config {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def test_squid_defaults_from_instance(instances):
    text = generate(instances, "squid", "site")
    assert f"http_port 81 accel defaultsite={SITE} vhost vport=80 name=port1" in text
    assert f"http_port 82 accel defaultsite={SITE} vhost vport=80 name=port2" in text
    assert re.search(r"^cache_peer 127\.0\.0\.1 parent 8081 .* name=process1$", text, re.M)
    assert re.search(r"^cache_peer 127\.0\.0\.1 parent 8082 .* name=process2$", text, re.M)
    assert "forward_max_tries 2" in text
    assert "refresh_pattern . 0 0% 0" in text


def test_squid_via_apache_defaults(instances):
    text = generate(instances, "squid", "site", "--via-apache")
    assert re.search(r"^cache_peer 127\.0\.0\.1 parent 9081 .* name=process1$", text, re.M)
    assert re.search(r"^cache_peer 127\.0\.0\.1 parent 9082 .* name=process2$", text, re.M)
    assert "parent 8081" not in text


def test_haproxy_defaults_from_instance(instances):
    text = generate(instances, "haproxy", "site")
    assert "    bind :80" in text
    assert "    server web1_port81 127.0.0.1:81 check" in text
    assert "    server web1_port82 127.0.0.1:82 check" in text
    assert (
        f"http-check send meth GET uri /view?vid=monitor_hostname ver HTTP/1.1 hdr Host {SITE}"
        in text
    )


def test_apache_defaults_from_instance(instances):
    text = generate(instances, "apache", "site")
    assert "Listen 127.0.0.1:9081" in text
    assert "Listen 127.0.0.1:9082" in text
    assert '        BalancerMember "http://127.0.0.1:8081" retry=10' in text


def test_process_address_from_interface(instances):
    text = generate(instances, "squid", "lan")
    assert re.search(r"^cache_peer 192\.0\.2\.20 parent 8081 .* name=process1$", text, re.M)
    assert f"defaultsite={SITE} " in text
    text = generate(instances, "apache", "lan", "--process-address", "192.0.2.21")
    assert '        BalancerMember "http://192.0.2.21:8081" retry=10' in text


def test_process_address_option_replaces_host_name_interface(instances):
    text = generate(instances, "squid", "named", "--process-address", "192.0.2.22")
    assert re.search(r"^cache_peer 192\.0\.2\.22 parent 8081 .* name=process1$", text, re.M)
    assert "server web1_port81 127.0.0.1:81 check" in generate(instances, "haproxy", "named")


def test_site_option_replaces_base_url(instances):
    text = generate(instances, "squid", "site", "--site", "Cache.Example.NET")
    assert "defaultsite=cache.example.net" in text
    assert SITE not in text


def test_output_option_writes_file(instances, tmp_path):
    output = tmp_path / "haproxy.cfg"
    result = haops_config(instances, "haproxy", "site", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert output.read_text() == generate(instances, "haproxy", "site")


# Bad input: (arguments, part of the message).
ERRORS = [
    (("nginx", "site"), "unknown kind 'nginx': give one of squid, haproxy, apache"),
    (("squid", "missing"), "no such instance missing"),
    (("squid", "bare"), "instance bare has no per-process copies: run `cubicweb-ctl haops-split bare` first"),
    (("squid", "site-1"), "instance site-1 is a copy of site"),
    (("squid", "nourl"), "instance nourl has no base-url"),
    (("apache", "named"), "the interface 'web1.example.org' of named is not an IP address: give --process-address"),
    (("squid", "clash"), "copies clash-1 and clash-2 of clash both use port 8081"),
    (("haproxy", "noport"), "copy noport-2 of noport has no port: set port in"),
    (("squid", "site", "--squid-ports", "81"), "--squid-ports 81 gives 1 port for 2 processes"),
    (("haproxy", "site", "--squid-ports", "81,82,83"), "gives 3 ports for 2 processes"),
    (("apache", "site", "--apache-ports", "9081"), "--apache-ports 9081 gives 1 port for 2 processes"),
    (("squid", "site", "--via-apache", "--apache-ports", "1,2,3"), "gives 3 ports for 2 processes"),
    (("squid", "site", "--squid-ports", "81,70000"), "invalid port '70000'"),
    (("squid", "site", "--squid-ports", "81,eighty"), "invalid port 'eighty'"),
    (("haproxy", "site", "--frontend-port", "0"), "--frontend-port: invalid port '0'"),
    (("squid", "site", "--squid-ports", "81,81"), "port 81 is given twice"),
    (("squid", "site", "--squid-ports", "8081,82"), "port 8081 is in both"),
    (("apache", "site", "--apache-ports", "8082,9082"), "port 8082 is in both"),
    (("squid", "site", "--squid-address", "300.1.1.1"), "--squid-address: invalid IP address '300.1.1.1'"),
    (("squid", "site", "--process-address", "0.0.0.0"), "'0.0.0.0' is the unspecified address"),
    (("apache", "site", "--apache-address", "localhost"), "invalid IP address 'localhost'"),
    (("haproxy", "site", "--web-servers", "192.0.2.1,web2"), "invalid IP address 'web2'"),
    (("haproxy", "site", "--web-servers", "192.0.2.1,192.0.2.1"), "address 192.0.2.1 is given twice"),
    (("haproxy", "site", "--frontend-address", "::1::"), "invalid IP address '::1::'"),
    (("haproxy", "site", "--health-url", "view?vid=monitor"), "invalid URL path 'view?vid=monitor'"),
    (("haproxy", "site", "--health-url", "/view?vid=monitor #x"), "invalid URL path"),
    (("apache", "site", "--site", "www example.org"), "invalid host name 'www example.org'"),
    (("squid", "site", "--web-servers", "192.0.2.1"), "--web-servers does not apply to squid"),
    (("haproxy", "site", "--via-apache"), "--via-apache does not apply to haproxy"),
    (("squid", "site", "--apache-ports", "9081,9082"), "--apache-ports applies to squid only with --via-apache"),
]


@pytest.mark.parametrize("args, message", ERRORS, ids=[" ".join(args) for args, _ in ERRORS])
def test_bad_input_rejected(instances, args, message):
    result = haops_config(instances, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_output_in_missing_directory_rejected(instances, tmp_path):
    output = tmp_path / "missing" / "squid.conf"
    result = haops_config(instances, "squid", "site", "-o", str(output))
    assert result.returncode == 1
    assert f"cannot write --output {output}: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


# The programs accept what the command writes --------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        (),
        ("--via-apache",),
        ("--squid-address", "192.0.2.10", "--squid-ports", "3181,3182", "--process-address", "::1"),
        ("--via-apache", "--apache-ports", "7001,7002", "--apache-address", "::1"),
    ],
    ids=["defaults", "via-apache", "addresses", "via-apache-ipv6"],
)
def test_squid_parse_accepts_config(instances, tmp_path, options):
    require(SQUID, "squid")
    path = tmp_path / "squid.conf"
    path.write_text(generate(instances, "squid", "site", *options))
    result = subprocess.run(
        [SQUID, "-k", "parse", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not COMPLAINT.findall(output), output


@pytest.mark.parametrize(
    "options",
    [
        (),
        (
            "--web-servers", "192.0.2.1,2001:db8::2",
            "--squid-ports", "3181,3182",
            "--frontend-address", "::",
            "--frontend-port", "8080",
            "--health-url", "/view?vid=monitor_pool",
        ),
    ],
    ids=["defaults", "every-option"],
)
def test_haproxy_check_accepts_config(instances, tmp_path, options):
    require(HAPROXY, "haproxy")
    path = tmp_path / "haproxy.cfg"
    path.write_text(generate(instances, "haproxy", "site", *options))
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Configuration file is valid" in output
    assert "[WARNING]" not in output, output


def modules_from_header(text):
    """Return the modules that the a2enmod line of a generated site file's header lists."""
    match = re.search(r"^#\s+a2enmod (.+)$", text, re.M)
    assert match, f"no a2enmod line in:\n{text}"
    return match.group(1).split()


def scratch_dir(root, prefix):
    """Return a new directory under *root* that the proxy and www-data users can traverse."""
    path = tempfile.mkdtemp(prefix=prefix, dir=root)
    os.chmod(path, 0o755)
    return Path(path)


@pytest.mark.parametrize(
    "options",
    [(), ("--apache-address", "::1", "--apache-ports", "7001,7002", "--site", "ipv6.example.org")],
    ids=["defaults", "ipv6"],
)
def test_apache_accepts_site(instances, instance_root, options):
    require(APACHE, APACHE_PACKAGE)
    require(A2ENMOD, APACHE_PACKAGE)
    text = generate(instances, "apache", "site", *options)
    apache = ScratchApache(scratch_dir(instance_root, "apache-check-"))
    apache.prepare()
    apache.enable_modules(modules_from_header(text))
    site_file = re.search(r"sites-available/(\S+\.conf)", text).group(1)
    apache.add_site(site_file, text)
    status, output = apache.check_config()
    assert status == 0, output
    assert output.strip() == "Syntax OK", output


# HTTP clients and running servers ------------------------------------------------


def request(port, path, host=SITE, source="127.0.0.1", headers=None):
    """Send GET *path* to 127.0.0.1:*port* from address *source*.

    Return the status, the headers with lower-case names and the body.
    """
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=HTTP_TIMEOUT, source_address=(source, 0)
    )
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def backend_of(body):
    """Return the backend that produced a JSON description of a request."""
    return json.loads(body)["backend"]


@contextlib.contextmanager
def running(*servers):
    """Start each server in turn and stop every started one on exit, even after a failure."""
    started = []
    try:
        for server, start in servers:
            start()
            started.append(server)
        yield
    finally:
        for server in reversed(started):
            server.stop()


def start_backends(count):
    backends = [StubBackend(f"backend{number}") for number in range(1, count + 1)]
    return backends, [(backend, backend.start) for backend in backends]


def squid_for(root, backends, **options):
    """Return a Squid on free ports of 127.0.0.1 that forwards port k to backend k."""
    workdir = scratch_dir(root, "squid-")
    ports = tuple(free_port() for _ in backends)
    settings = SquidSettings(
        site=SITE,
        process_ports=tuple(backend.port for backend in backends),
        squid_ports=ports,
        listen_address="127.0.0.1",
        log_dir=str(workdir),
        pid_file=str(workdir / "squid.pid"),
        **options,
    )
    return AcceleratorSquid(workdir, squid_config(settings), ports)


def run_squid_site(root):
    """Start three stub processes behind Squid, port k forwarding to process k, and yield both."""
    require(SQUID, "squid")
    backends, starts = start_backends(3)
    squid = squid_for(root, backends)
    with running(*starts, (squid, squid.start)):
        yield squid, backends


@pytest.fixture(scope="module")
def squid_site(instance_root):
    """A Squid site shared by the tests that stop nothing. Each of them uses its own URLs."""
    yield from run_squid_site(instance_root)


@pytest.fixture
def squid_site_to_break(instance_root):
    """A Squid site of its own, for a test that stops a process."""
    yield from run_squid_site(instance_root)


# Squid ----------------------------------------------------------------------------


def test_squid_port_reaches_its_process(squid_site):
    squid, backends = squid_site
    for index, backend in enumerate(backends, 1):
        port = squid.ports[index - 1]
        status, _, body = request(port, "/view?vid=monitor_hostname")
        assert (status, body.decode()) == (200, f"{backend.name}\n"), f"Squid port {index}"
        status, _, body = request(port, "/page")
        assert status == 200
        assert backend_of(body) == backend.name


def test_squid_forwards_host_and_client(squid_site):
    squid, backends = squid_site
    status, _, body = request(squid.ports[0], "/page", source="127.0.0.2")
    assert status == 200
    answer = json.loads(body)
    assert answer["host"] == SITE
    assert answer["x_forwarded_for"].split(", ")[-1] == "127.0.0.2"


def test_squid_denies_other_hosts(squid_site):
    squid, backends = squid_site
    other_hosts = (
        "other.example.org",
        f"other.example.org:{squid.ports[0]}",
        f"{SITE}.attacker.example",
        "127.0.0.1",
    )
    for host in other_hosts:
        status, _, _ = request(squid.ports[0], "/page-for-other-host", host=host)
        assert status == 403, host
    assert backends[0].requests_for("/page-for-other-host") == []


def test_squid_denies_manager_and_forward_proxying(squid_site):
    squid, backends = squid_site
    port = squid.ports[0]
    assert request(port, "/squid-internal-mgr/info")[0] == 403
    status, _, _ = request(port, "http://other.example.org/forwarded", host="other.example.org")
    assert status == 403
    assert all(backend.requests_for("/forwarded") == [] for backend in backends)


def test_squid_accepts_site_with_port(squid_site):
    squid, backends = squid_site
    status, _, body = request(squid.ports[1], "/page", host=f"{SITE}:{squid.ports[1]}")
    assert status == 200
    assert backend_of(body) == "backend2"


def test_squid_stores_only_what_responses_allow(squid_site):
    squid, backends = squid_site
    port = squid.ports[0]
    for _ in range(2):
        assert request(port, "/heuristic")[0] == 200
        assert request(port, "/cached")[0] == 200
    # No Cache-Control: without heuristic freshness, each request goes to the process.
    assert len(backends[0].requests_for("/heuristic")) == 2
    # max-age=60: the second request is a hit.
    assert len(backends[0].requests_for("/cached")) == 1


def test_squid_keeps_logged_in_users_apart(squid_site):
    squid, backends = squid_site
    port = squid.ports[0]
    logged_in = {"Cookie": "session=s; auth_tkt=t; csrf_token=c"}
    anonymous_cookies = {"Cookie": "session=s; csrf_token=c"}

    # A page stored for anonymous visitors is not served to a logged-in user.
    request(port, "/cached?key=anonymous-first")
    request(port, "/cached?key=anonymous-first", headers=anonymous_cookies)
    request(port, "/cached?key=anonymous-first", headers=logged_in)
    # A page fetched by a logged-in user is not stored.
    request(port, "/cached?key=logged-in-first", headers=logged_in)
    request(port, "/cached?key=logged-in-first")
    # Images are shared with logged-in users.
    request(port, "/file/5/raw/0123456789abcdef/a.png")
    request(port, "/file/5/raw/0123456789abcdef/a.png", headers=logged_in)

    assert len(backends[0].requests_for("/cached?key=anonymous-first")) == 2
    assert len(backends[0].requests_for("/cached?key=logged-in-first")) == 2
    assert len(backends[0].requests_for("/file/5/raw/0123456789abcdef/a.png")) == 1


def test_squid_cache_key_ignores_port(squid_site):
    """vhost vport=80: one cache entry whatever the port and the port in the Host header."""
    squid, backends = squid_site
    path = "/cached?key=shared"
    status, _, first = request(squid.ports[0], path, host=f"{SITE}:{squid.ports[0]}")
    assert status == 200
    status, _, second = request(squid.ports[1], path)
    assert status == 200
    assert second == first
    assert len(backends[0].requests_for(path)) == 1
    assert backends[1].requests_for(path) == []


def test_squid_fails_over_but_not_monitoring(squid_site_to_break):
    squid, backends = squid_site_to_break
    first_port = squid.ports[0]
    backends[0].stop()

    for attempt in range(10):
        status, _, body = request(first_port, f"/page?attempt={attempt}")
        assert status == 200, f"attempt {attempt}"
        assert backend_of(body) in ("backend2", "backend3")

    monitored_before = [len(backend.requests_for(HOSTNAME_URL)) for backend in backends]
    status, _, body = request(first_port, HOSTNAME_URL)
    assert status >= 500, body
    monitored_after = [len(backend.requests_for(HOSTNAME_URL)) for backend in backends]
    assert monitored_after == monitored_before
    assert request(first_port, "/view?vid=monitor")[0] >= 500

    for index in (2, 3):
        status, _, body = request(squid.ports[index - 1], "/view?vid=monitor")
        assert status == 200
        assert json.loads(body)["process"] == f"backend{index}"


def test_squid_uses_restarted_process(squid_site_to_break):
    squid, backends = squid_site_to_break
    first_port = squid.ports[0]
    backends[0].stop()
    for attempt in range(5):
        assert request(first_port, f"/page?down={attempt}")[0] == 200
    backends[0].start()

    deadline = time.monotonic() + RECOVERY_TIMEOUT
    answered_by = None
    while time.monotonic() < deadline:
        status, _, body = request(first_port, "/page?back")
        answered_by = backend_of(body) if status == 200 else status
        if answered_by == "backend1":
            break
        time.sleep(0.5)
    assert answered_by == "backend1", f"still {answered_by} after {RECOVERY_TIMEOUT} s"


# HAProxy --------------------------------------------------------------------------


@pytest.fixture
def balanced_site(instance_root):
    """Two stub processes behind Squid, and HAProxy over the two Squid ports."""
    require(SQUID, "squid")
    require(HAPROXY, "haproxy")
    backends, starts = start_backends(2)
    squid = squid_for(instance_root, backends)
    workdir = scratch_dir(instance_root, "haproxy-")
    frontend_port = free_port()
    settings = HAProxySettings(
        site=SITE,
        web_servers=("127.0.0.1",),
        squid_ports=squid.ports,
        frontend_port=frontend_port,
        frontend_address="127.0.0.1",
        stats_socket=str(workdir / "admin.sock"),
        check_interval=CHECK_INTERVAL,
    )
    haproxy = HAProxy(workdir, haproxy_config(settings), frontend_port, workdir / "admin.sock")
    servers = [name for name, _, _ in settings.servers()]
    with running(*starts, (squid, squid.start), (haproxy, haproxy.start)):
        states = haproxy.wait_for_states(
            "squid_ports", {name: "UP" for name in servers}, STATE_TIMEOUT
        )
        assert set(states.values()) == {"UP"}, f"{states}\n{haproxy.output()}"
        yield haproxy, servers, backends


def sources(count):
    """Return *count* distinct loopback client addresses."""
    return [f"127.0.0.{number}" for number in range(10, 10 + count)]


def test_haproxy_balances_by_source(balanced_site):
    haproxy, _, _ = balanced_site
    chosen = {}
    for source in sources(20):
        answers = {backend_of(request(haproxy.port, "/page", source=source)[2]) for _ in range(3)}
        assert len(answers) == 1, f"{source} reached {answers}"
        chosen[source] = answers.pop()
    assert set(chosen.values()) == {"backend1", "backend2"}, chosen


def test_haproxy_checks_with_site_host(balanced_site):
    _, _, backends = balanced_site
    for backend in backends:
        checks = backend.requests_for("/view?vid=monitor_hostname")
        assert checks, f"{backend.name} got no health check"
        assert {headers.get("Host") for headers in checks} == {SITE}


def test_haproxy_denies_monitoring_urls(balanced_site):
    haproxy, _, _ = balanced_site
    for path in ("/view?vid=monitor", "/view?vid=monitor_pool", "/view?vid=%6Donitor_db"):
        status, _, _ = request(haproxy.port, path)
        assert status == 403, path
    assert request(haproxy.port, "/view?vid=primary")[0] == 200


def test_haproxy_marks_down_server_of_stopped_process(balanced_site):
    haproxy, servers, backends = balanced_site
    backends[0].stop()
    expected = {servers[0]: "DOWN", servers[1]: "UP"}
    states = haproxy.wait_for_states("squid_ports", expected, STATE_TIMEOUT)
    assert states == expected, haproxy.output()
    for source in sources(20):
        status, _, body = request(haproxy.port, "/page", source=source)
        assert status == 200, source
        assert backend_of(body) == "backend2"


# Apache ---------------------------------------------------------------------------


def run_apache_site(root):
    """Start two stub processes behind Apache, and Squid in front of Apache, and yield them."""
    require(SQUID, "squid")
    require(APACHE, APACHE_PACKAGE)
    backends, starts = start_backends(2)
    apache_ports = (free_port(), free_port())
    settings = ApacheSettings(
        site=SITE,
        process_ports=tuple(backend.port for backend in backends),
        apache_ports=apache_ports,
    )
    text = apache_config(settings)
    apache = ScratchApache(scratch_dir(root, "apache-"))
    apache.prepare()
    apache.enable_modules(modules_from_header(text))
    apache.add_site(settings.site_file_name, text)
    squid = squid_for(root, backends, apache_ports=apache_ports)
    with running(*starts, (apache, lambda: apache.start(apache_ports[0])), (squid, squid.start)):
        yield apache_ports, squid, backends, apache


@pytest.fixture(scope="module")
def apache_site(instance_root):
    """An Apache site shared by the tests that stop nothing."""
    yield from run_apache_site(instance_root)


@pytest.fixture
def apache_site_to_break(instance_root):
    """An Apache site of its own, for a test that stops a process."""
    yield from run_apache_site(instance_root)


@pytest.mark.parametrize("kind", ["html", "plain", "css", "js", "json"])
def test_apache_compresses_text(apache_site, kind):
    apache_ports, _, backends, _ = apache_site
    status, headers, body = request(
        apache_ports[0], f"/text/{kind}", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert "accept-encoding" in headers.get("vary", "").lower()
    assert gzip.decompress(body).decode() == backends[0].text_body(kind)


def test_apache_sends_identity_without_accept_encoding(apache_site):
    apache_ports, _, backends, _ = apache_site
    status, headers, body = request(apache_ports[0], "/text/html")
    assert status == 200
    assert "content-encoding" not in headers
    assert body.decode() == backends[0].text_body("html")


def test_apache_passes_host_and_client(apache_site):
    apache_ports, squid, _, _ = apache_site
    status, _, body = request(apache_ports[1], "/page", source="127.0.0.3")
    assert status == 200
    answer = json.loads(body)
    assert answer["backend"] == "backend2"
    assert answer["host"] == SITE
    assert answer["x_forwarded_for"] == "127.0.0.3"

    status, _, body = request(squid.ports[1], "/page", source="127.0.0.2")
    assert status == 200
    addresses = json.loads(body)["x_forwarded_for"].split(", ")
    assert addresses[-1] == "127.0.0.2"
    assert "127.0.0.1" not in addresses


def test_apache_server_status_for_local_clients(apache_site):
    apache_ports, squid, backends, _ = apache_site
    status, _, body = request(apache_ports[0], "/server-status")
    assert status == 200
    assert b"Apache Server Status" in body

    status, _, _ = request(apache_ports[0], "/server-status", source="127.0.0.2")
    assert status == 403

    # Squid connects from 127.0.0.1; mod_remoteip makes the client 127.0.0.2.
    status, _, body = request(squid.ports[0], "/server-status", source="127.0.0.2")
    assert status == 403
    assert b"Forbidden" in body
    assert all(backend.requests_for("/server-status") == [] for backend in backends)


def test_squid_via_apache_fails_over_but_not_monitoring(apache_site_to_break):
    _, squid, backends, apache = apache_site_to_break
    backends[0].stop()
    for attempt in range(5):
        status, _, body = request(squid.ports[0], f"/page?attempt={attempt}")
        assert status == 200, f"attempt {attempt}: {body!r}\n{apache.logs()}"
        assert backend_of(body) == "backend2"
    monitored_before = len(backends[1].requests_for("/view?vid=monitor_hostname"))
    status, _, _ = request(squid.ports[0], "/view?vid=monitor_hostname")
    assert status >= 500
    assert len(backends[1].requests_for("/view?vid=monitor_hostname")) == monitored_before
    status, _, body = request(squid.ports[1], "/view?vid=monitor_hostname")
    assert (status, body.decode()) == (200, "backend2\n")
