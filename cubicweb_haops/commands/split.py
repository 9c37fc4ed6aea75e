"""``cubicweb-ctl haops-split``: one instance per process, all copies of one template.

Every copy shares the template's database sources, cubes and pyramid.ini
secrets, so that a session cookie from one process is valid in all of them,
and differs only in its port, its pid and log files and its marker.
"""

from cubicweb.cwctl import CWCTL
from cubicweb.toolsutils import Command

from cubicweb_haops.deployment import split


class SplitCommand(Command):
    """Create or update one copy of an instance per process.

    The copies INSTANCE-1 to INSTANCE-N get every file of INSTANCE's
    configuration directory, modes included, with their own port (PORT,
    PORT+1, ...), pid file and log file. Running the command again brings
    them back in line with INSTANCE and prints what changed. It never
    opens the database, which the copies share with INSTANCE. Serve each
    copy with "cubicweb-ctl haops-start INSTANCE-k".

    <instance>
      identifier of the instance to copy.
    """

    name = "haops-split"
    arguments = "<instance>"
    min_args = max_args = 1
    options = (
        (
            "processes",
            {
                "short": "n",
                "type": "string",
                "metavar": "<number>",
                "default": None,
                "help": "number of copies, 1 or more; default: as many as exist, or"
                " for a first run the number of CPUs that this command may run on",
            },
        ),
        (
            "base-port",
            {
                "type": "string",
                "metavar": "<port>",
                "default": None,
                "help": "HTTP port of the first copy, the next copies taking the"
                " following ports; default: the first copy's port, or for a first"
                " run the instance's port + 1",
            },
        ),
    )

    def run(self, args):
        template = args[0]
        processes = self._integer_option("processes", "a number of processes, 1 or more")
        base_port = self._integer_option("base-port", "a TCP port from 1 to 65535")

        try:
            plan = split.plan_split(template, processes, base_port)
        except split.SplitError as error:
            self.fail(str(error))
        try:
            split.apply_split(plan)
        except OSError as error:
            # Each file was replaced whole, so a second run completes the copies.
            self.fail(
                f"cannot write {error.filename} ({error.strerror}): fix the cause,"
                f" then run `cubicweb-ctl haops-split {template}` again to complete the copies"
            )

        for line in report_lines(plan):
            print(line)

    def _integer_option(self, option, expected):
        value = self[option]
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"--{option} {value!r} is not an integer: give {expected}")


def report_lines(plan):
    """Return the lines that tell the operator what ``apply_split(plan)`` changed."""
    lines = []
    for copy_plan in plan.copies:
        lines.extend(_copy_lines(plan.template, copy_plan))

    if not any(copy_plan.changes for copy_plan in plan.copies):
        names = ", ".join(copy_plan.copy.name for copy_plan in plan.copies)
        verb = "matches" if len(plan.copies) == 1 else "match"
        lines.append(f"Nothing changed: {names} already {verb} {plan.template}.")

    for extra in plan.extras:
        lines.append(
            f"{extra.name} (port {extra.port}): not needed with --processes {len(plan.copies)},"
            f" left in place. Stop it, then remove it with `cubicweb-ctl delete {extra.name}`"
            f" and answer n when that command offers to delete the database, which"
            f" {plan.template} uses too."
        )
    return lines


def _copy_lines(template, copy_plan):
    heading = f"{copy_plan.copy.name} (port {copy_plan.copy.port})"
    if copy_plan.is_new:
        files = sum(1 for path in copy_plan.expected if not path.endswith("/"))
        return [f"{heading}: created, {files} files"]
    if not copy_plan.changes:
        return [f"{heading}: unchanged, {copy_plan.unchanged} files and directories"]

    lines = [f"{heading}: updated"]
    for change in copy_plan.changes:
        if change.action == split.UPDATED:
            lines.append(f"  {change.path}: updated ({'; '.join(change.details)})")
        elif change.action == split.REMOVED:
            lines.append(f"  {change.path}: removed, {template} no longer has it")
        else:
            lines.append(f"  {change.path}: created")
    lines.append(f"  {copy_plan.unchanged} other files and directories unchanged")
    return lines


def register():
    CWCTL.register(SplitCommand)
