"""Nagios 4 from Debian's nagios4-core, configured and run under one directory.

The harness verifies a configuration with ``nagios4 -v`` or runs the daemon
in the foreground, forces service checks through the external command file
and reads the results from ``status.dat`` and ``nagios.log``.
"""

import grp
import os
import pwd
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import stop_process_group

NAGIOS = "/usr/sbin/nagios4"
PLUGINS = "/usr/lib/nagios/plugins"
START_TIMEOUT = 30
STOP_TIMEOUT = 15
CHECK_TIMEOUT = 60

# The characters that Debian's /etc/nagios4/nagios.cfg forbids in object
# names, so that the shipped names pass there too.
ILLEGAL_OBJECT_NAME_CHARS = "`~!$%^&*|'\"<>?,()="

STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


def main_config(base, objects, extra=None):
    """Return the text of a nagios.cfg that keeps every file Nagios reads or writes under *base*."""
    # Started as root, Nagios switches to nagios_user before it opens its
    # files, so make that the current user, who owns the temporary directory.
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    settings = {
        "log_file": base / "nagios.log",
        "cfg_dir": objects,
        "object_cache_file": base / "objects.cache",
        "precached_object_file": base / "objects.precache",
        "resource_file": base / "resource.cfg",
        "status_file": base / "status.dat",
        "state_retention_file": base / "retention.dat",
        "temp_file": base / "nagios.tmp",
        "temp_path": base / "tmp",
        "lock_file": base / "nagios.lock",
        "check_result_path": base / "checkresults",
        "command_file": base / "nagios.cmd",
        "query_socket": base / "nagios.qh",
        "debug_file": base / "nagios.debug",
        "nagios_user": user,
        "nagios_group": group,
        "illegal_object_name_chars": ILLEGAL_OBJECT_NAME_CHARS,
        "illegal_macro_output_chars": "`~$&|'\"<>",
        **(extra or {}),
    }
    return "".join(f"{name}={value}\n" for name, value in settings.items())


@dataclass
class ServiceStatus:
    state: str
    hard: bool
    output: str
    perfdata: str
    last_check: int


def parse_status(text):
    """Return the ``servicestatus`` blocks of status.dat as {(host, service): ServiceStatus}."""
    services = {}
    for block in text.split("servicestatus {")[1:]:
        fields = {}
        for line in block.split("}", 1)[0].splitlines():
            name, sep, value = line.strip().partition("=")
            if sep:
                fields[name] = value
        services[(fields["host_name"], fields["service_description"])] = ServiceStatus(
            state=STATES[int(fields["current_state"])],
            hard=fields["state_type"] == "1",
            output=fields["plugin_output"],
            perfdata=fields["performance_data"],
            last_check=int(fields["last_check"]),
        )
    return services


class Nagios:
    """The Nagios daemon with the object files of *objects*, under *workdir*.

    *plugins* is the directory that ``$USER1$`` names in the commands.
    Notifications are off: the shipped contacts would run ``mail``.
    """

    def __init__(self, workdir, objects, plugins=PLUGINS):
        self.workdir = Path(workdir)
        self.objects = Path(objects)
        self.plugins = plugins
        self.config_path = self.workdir / "nagios.cfg"
        self.status_path = self.workdir / "status.dat"
        self.log_path = self.workdir / "nagios.log"
        self.command_path = self.workdir / "nagios.cmd"
        self.output_path = self.workdir / "nagios.out"
        self.process = None

    def write_config(self):
        for directory in ("tmp", "checkresults"):
            (self.workdir / directory).mkdir(parents=True, exist_ok=True)
        (self.workdir / "resource.cfg").write_text(f"$USER1$={self.plugins}\n")
        daemon_settings = {
            "check_external_commands": 1,
            "status_update_interval": 1,
            "enable_notifications": 0,
            # No ping: the host is this machine, and its state does not
            # stop Nagios from checking its services.
            "execute_host_checks": 0,
            "use_syslog": 0,
            "log_initial_states": 1,
            "log_rotation_method": "n",
        }
        self.config_path.write_text(main_config(self.workdir, self.objects, daemon_settings))

    def start(self):
        self.write_config()
        output = open(self.output_path, "ab")
        try:
            self.process = subprocess.Popen(
                [NAGIOS, str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            output.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.status_path.exists() and self.command_path.exists()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nagios4 did not start:\n{self.logs()}")
            time.sleep(0.2)

    def stop(self):
        if self.process is not None:
            stop_process_group(self.process, STOP_TIMEOUT)
            self.process = None

    def logs(self):
        return "\n".join(
            path.read_text(errors="replace")[-4000:]
            for path in (self.output_path, self.log_path)
            if path.exists()
        )

    def services(self):
        return parse_status(self.status_path.read_text(errors="replace"))

    def check_service(self, host, service):
        """Force a check of *service* on *host* now and return its status once it ran."""
        # last_check has a one-second resolution: wait for the next second,
        # so that a result from this second cannot pass for the new one.
        now = int(time.time()) + 1
        time.sleep(max(0.0, now - time.time()))
        with open(self.command_path, "w") as command_file:
            command_file.write(f"[{now}] SCHEDULE_FORCED_SVC_CHECK;{host};{service};{now}\n")
        deadline = time.monotonic() + CHECK_TIMEOUT
        while time.monotonic() < deadline:
            status = self.services().get((host, service))
            if status is not None and status.last_check >= now:
                return status
            time.sleep(0.2)
        raise TimeoutError(f"Nagios did not check {service!r} within {CHECK_TIMEOUT} s:\n{self.logs()}")

    def alerts(self, host, service):
        """Return the states of the SERVICE ALERT lines logged for *service* on *host*."""
        prefix = f"SERVICE ALERT: {host};{service};"
        return [
            line.split(prefix, 1)[1].split(";")[:2]
            for line in self.log_path.read_text(errors="replace").splitlines()
            if prefix in line
        ]
