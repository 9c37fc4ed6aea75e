"""Options of an instance's ``all-in-one.conf``, read and set as text.

The file is edited line by line rather than regenerated, so that the
comments, the order and every other option stay as the operator left them.
"""

import configparser
import re

# The section that contains ``port`` in the file that ``cubicweb-ctl create``
# writes (CubicWeb 5.0, cubicweb-web 1.6).
PORT_SECTION = "WEB"
SECTION_HEADER = re.compile(r"^\s*\[(?P<section>[^\]]+)\]")


def _option_line(name):
    return re.compile(
        rf"^(?P<comment>\s*[#;]\s*)?{re.escape(name)}\s*[=:](?P<value>.*?)(?P<end>\r?\n)?$"
    )


def option_value(text, name):
    """Return the value of the first uncommented *name* line, or None if there is none."""
    pattern = _option_line(name)
    for line in text.splitlines(keepends=True):
        match = pattern.match(line)
        if match and not match["comment"]:
            return match["value"].strip()
    return None


def set_option(text, name, value, section=PORT_SECTION):
    """Return *text* with *name* set to *value*.

    The first uncommented *name* line gets the value, else the first
    commented one is uncommented. Without either, the line goes at the end
    of *section*, which is appended when the file has none.
    """
    pattern = _option_line(name)
    lines = text.splitlines(keepends=True)
    matches = [(number, pattern.match(line)) for number, line in enumerate(lines)]
    matches = [(number, match) for number, match in matches if match]
    uncommented = [(number, match) for number, match in matches if not match["comment"]]
    chosen = (uncommented or matches or [None])[0]

    if chosen is not None:
        number, match = chosen
        lines[number] = f"{name}={value}{match['end'] or ''}"
        return "".join(lines)

    return _append_to_section(lines, f"{name}={value}", section)


def _append_to_section(lines, line, section):
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline

    start = None
    for number, text in enumerate(lines):
        header = SECTION_HEADER.match(text)
        if header and start is None and header["section"].strip() == section:
            start = number
        elif header and start is not None:
            # Before the blank lines that end the section, if any.
            end = number
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1
            lines.insert(end, line + newline)
            return "".join(lines)

    if start is None:
        lines.append(f"{newline}[{section}]{newline}")
    lines.append(line + newline)
    return "".join(lines)


def _options(text):
    parser = configparser.RawConfigParser(strict=False)
    parser.read_string(text)
    return {
        (section, option): value
        for section in parser.sections()
        for option, value in parser.items(section)
    }


def changed_options(old_text, new_text):
    """Return the sorted names of the options that differ between two versions of a file.

    Returns None when either version cannot be parsed as INI.
    """
    try:
        old, new = _options(old_text), _options(new_text)
    except configparser.Error:
        return None
    differing = {key for key in set(old) | set(new) if old.get(key) != new.get(key)}
    return sorted({option for _section, option in differing})
