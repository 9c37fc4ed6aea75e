"""Squid running a configuration that ``haops-config squid`` wrote, on 127.0.0.1.

The configuration must listen on 127.0.0.1 and keep its logs and pid file in
the work directory. A few lines are appended so that the test Squid stays on
this machine: later values of these directives replace the generated ones.
"""

import os

from .squid import SQUID_USER, Squid

TEST_LINES = (
    "# Appended by the test harness.",
    "visible_hostname haops-test-squid",
    "dns_nameservers 127.0.0.1",
    "udp_incoming_address 127.0.0.1",
    "udp_outgoing_address 127.0.0.1",
    "netdb_filename none",
    "pinger_enable off",
    "shutdown_lifetime 1 second",
)


class AcceleratorSquid(Squid):
    """Squid serving *config_text* on *ports* of 127.0.0.1, from *workdir*."""

    def __init__(self, workdir, config_text, ports):
        super().__init__(workdir, origin_port=None, port=ports[0])
        self.generated_text = config_text
        self.ports = tuple(ports)

    def config_text(self):
        lines = [*TEST_LINES, f"coredump_dir {self.workdir}"]
        if os.geteuid() == 0:
            lines.append(f"cache_effective_user {SQUID_USER}")
        return self.generated_text + "\n" + "\n".join(lines) + "\n"
