"""The Nagios and HAProxy configurations under docs/, read by the programs they are for.

Nagios verifies a copy of docs/nagios with ``nagios4 -v -p`` and writes the
objects it resolved, which the tests then read. HAProxy checks
docs/haproxy/haproxy-cubicweb.cfg with ``haproxy -c``. Neither starts a
daemon. The check_http command runs against a stub server on 127.0.0.1, so
that a quoting mistake in the shipped command line fails here.
"""

import http.server
import os
import re
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from harness.nagios import NAGIOS, PLUGINS, main_config

ROOT = Path(__file__).resolve().parent.parent
NAGIOS_DOCS = ROOT / "docs" / "nagios"
HAPROXY_CONFIG = ROOT / "docs" / "haproxy" / "haproxy-cubicweb.cfg"

HAPROXY = "/usr/sbin/haproxy"
CHECK_HTTP = f"{PLUGINS}/check_http"

EXAMPLE_HOST = "cubicweb-web1"
EXAMPLE_ADDRESS = "127.0.0.1"
PORTS = (8081, 8082)
CHECKS = ("pool", "db", "version")


def require(program, package):
    """Fail with the Debian package to install unless *program* is executable."""
    if not os.access(program, os.X_OK):
        pytest.fail(
            f"{program} is missing: install Debian's {package} package"
            f" (apt-get install {package}, or make system-packages as root)"
        )


def run(args, timeout=60):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout + result.stderr


def parse_objects(text):
    """Return the ``define`` blocks of a Nagios object file as (type, {directive: value})."""
    objects = []
    for kind, body in re.findall(r"define\s+(\w+)\s*\{(.*?)\n\s*\}", text, re.S):
        directives = {}
        for line in body.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, value = line.partition("\t" if "\t" in line else " ")
                directives[name] = value.strip()
        objects.append((kind, directives))
    return objects


@pytest.fixture(scope="module")
def nagios(tmp_path_factory):
    """Verify a copy of docs/nagios and return Nagios's exit status, output and resolved objects."""
    require(NAGIOS, "nagios4-core")
    base = tmp_path_factory.mktemp("nagios")
    objects = base / "objects"
    shutil.copytree(NAGIOS_DOCS, objects)
    for directory in ("tmp", "checkresults"):
        (base / directory).mkdir()
    (base / "resource.cfg").write_text(f"$USER1$={PLUGINS}\n")
    config = base / "nagios.cfg"
    config.write_text(main_config(base, objects))
    # -p writes the objects as Nagios resolved them (templates applied,
    # host groups expanded) to precached_object_file.
    status, output = run([NAGIOS, "-v", "-p", str(config)])
    precache = base / "objects.precache"
    resolved = parse_objects(precache.read_text()) if precache.exists() else []
    return status, output, resolved


def services_of(resolved, host):
    return {
        directives["service_description"]: directives["check_command"]
        for kind, directives in resolved
        if kind == "service" and directives.get("host_name") == host
    }


def commands_of(resolved):
    return {
        directives["command_name"]: directives["command_line"]
        for kind, directives in resolved
        if kind == "command"
    }


def expand(command_line, arguments, address=EXAMPLE_ADDRESS):
    """Substitute the macros that the shipped check commands use, as Nagios would."""
    macros = {"$USER1$": PLUGINS, "$HOSTADDRESS$": address}
    macros.update({f"$ARG{number}$": value for number, value in enumerate(arguments, 1)})
    unknown = set(re.findall(r"\$[A-Z0-9_]+\$", command_line)) - set(macros)
    assert not unknown, f"unexpected macros {sorted(unknown)} in {command_line!r}"
    for macro, value in macros.items():
        command_line = command_line.replace(macro, value)
    return command_line


def test_nagios_accepts_the_shipped_objects(nagios):
    status, output, _ = nagios
    assert status == 0, f"nagios4 -v exited with {status}:\n{output}"
    assert "Total Errors:   0" in output, output
    assert "Total Warnings: 0" in output, output


def test_nagios_service_per_port_and_check(nagios):
    status, output, resolved = nagios
    assert status == 0, output
    services = services_of(resolved, EXAMPLE_HOST)
    for port in PORTS:
        for check in CHECKS:
            with_plugin = services.get(f"CubicWeb {port} {check}", "")
            assert re.fullmatch(rf"check_haops(_defaults)?!{port}!{check}(!.*)?", with_plugin), (
                f"no check_haops service for {check} on port {port}: {services}"
            )
            with_check_http = services.get(f"CubicWeb {port} {check} via check_http")
            assert with_check_http == f"check_cubicweb_http!{port}!monitor_{check}", services
    assert services["CubicWeb replication"] == f"check_haops_defaults!{PORTS[0]}!replication"
    assert len(services) == len(PORTS) * len(CHECKS) * 2 + 1, services


def test_nagios_commands_get_their_arguments(nagios):
    _, output, resolved = nagios
    commands = commands_of(resolved)
    services = services_of(resolved, EXAMPLE_HOST)
    assert services, output
    for description, check_command in services.items():
        name, *arguments = check_command.split("!")
        assert name in commands, f"{description}: no command {name}"
        argument_numbers = [int(number) for number in re.findall(r"\$ARG(\d+)\$", commands[name])]
        assert len(arguments) == max(argument_numbers, default=0), (
            f"{description}: {check_command} gives {len(arguments)} arguments to"
            f" {commands[name]!r}"
        )


def test_check_haops_commands_parse(nagios):
    """Every check_haops command line is one that the plugin accepts."""
    from cubicweb_haops.nagios import parse_arguments

    _, output, resolved = nagios
    commands = commands_of(resolved)
    checked = 0
    for check_command in services_of(resolved, EXAMPLE_HOST).values():
        name, *arguments = check_command.split("!")
        if not name.startswith("check_haops"):
            continue
        program, *argv = shlex.split(expand(commands[name], arguments))
        assert program == f"{PLUGINS}/check_haops"
        options = parse_arguments(argv)
        assert options.hostname == EXAMPLE_ADDRESS
        assert options.port == int(arguments[0])
        assert options.check == arguments[1]
        if len(arguments) > 2:
            assert options.warning == arguments[2]
            assert options.critical == arguments[3]
        checked += 1
    assert checked == len(PORTS) * len(CHECKS) + 1, output


class MonitoringStub(http.server.BaseHTTPRequestHandler):
    """Stub of a healthy monitoring view that records the path of every request."""

    def do_GET(self):
        self.server.paths.append(self.path)
        body = b"ServiceOK : stub | 'pool_usage'=10%;80;95;0;100\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def test_check_http_reaches_the_view(nagios):
    """The check_http command, run through a shell as Nagios runs it, requests the right URL."""
    require(CHECK_HTTP, "monitoring-plugins-basic")
    _, output, resolved = nagios
    commands = commands_of(resolved)
    server = http.server.HTTPServer((EXAMPLE_ADDRESS, 0), MonitoringStub)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for check in CHECKS:
            service = f"CubicWeb {PORTS[0]} {check} via check_http"
            name, *arguments = services_of(resolved, EXAMPLE_HOST)[service].split("!")
            # Point the command at the stub instead of the process's port.
            arguments[0] = str(server.server_port)
            command_line = expand(commands[name], arguments)
            status, text = run(["/bin/sh", "-c", command_line], timeout=30)
            assert status == 0, f"{command_line}: {text}"
            assert server.paths[-1] == f"/view?vid=monitor_{check}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_haproxy_accepts_the_configuration():
    require(HAPROXY, "haproxy")
    status, output = run([HAPROXY, "-c", "-f", str(HAPROXY_CONFIG)])
    assert status == 0, f"haproxy -c exited with {status}:\n{output}"


def test_haproxy_checks_every_process():
    lines = [
        line.strip()
        for line in HAPROXY_CONFIG.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "option httpchk GET /view?vid=monitor" in lines
    assert "http-check expect status 200" in lines
    servers = [line for line in lines if line.startswith("server ")]
    for port in PORTS:
        assert any(
            re.fullmatch(rf"server \S+ 127\.0\.0\.1:{port} .*\bcheck\b.*", line) for line in servers
        ), f"no checked server on port {port}: {servers}"
