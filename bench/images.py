"""Benchmarks of image serving, on a real instance process and a real Squid.

Two cases, each run side by side in one process so that the ratios hold on a
noisy machine:

- Squid against the instance: requests per second for a 200 KB public image
  fetched through Squid (cache hits) and straight from the instance, with
  Debian's ``wrk``. It also counts the requests that reached the instance
  per 1,000 client requests through Squid. Targets: hits at least 10 times the direct
  throughput, and one instance request per image per cache lifetime.
- Conditional requests: the time of a ``304`` (``If-None-Match`` with the
  current ETag) against a full ``200`` for a 5 MB image, straight from the
  instance. Target: the 304 costs at most 5% of the 200.

The instance runs on SQLite with the test harness (``test/harness``).
"""

import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

from harness.instance import Instance  # noqa: E402 (the harness lives under test/)
from harness.squid import Squid  # noqa: E402

from cubicweb_haops.fingerprint import fingerprint_of  # noqa: E402

WRK = "wrk"
WRK_SECONDS = 4
WRK_THREADS = 2
WRK_CONNECTIONS = 8
HIT_RATIO_TARGET = 10.0
CONDITIONAL_RATIO_TARGET = 0.05

SETUP_SCRIPT = """
import json
from cubicweb import Binary
images = {{}}
for name, path in {paths!r}.items():
    with open(path, "rb") as image_file:
        entity = cnx.create_entity(
            "File", data=Binary(image_file.read()), data_name=name + ".png",
            data_format="image/png", title=name,
        )
    images[name] = [entity.eid, entity.data_hash]
commit()
print("RESULT", json.dumps(images))
"""

REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([0-9.]+)")
REQUEST_COUNT = re.compile(r"(\d+) requests in")


def noise_png(side, seed):
    """Return a PNG of random pixels, which compresses little (side² × 3 bytes)."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, "PNG")
    return buffer.getvalue()


def run_wrk(url, headers=(), connections=WRK_CONNECTIONS, threads=WRK_THREADS):
    """Return (requests per second, request count) of one bounded wrk run on *url*."""
    command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{WRK_SECONDS}s", "--timeout", "5s"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=WRK_SECONDS + 30
    ).stdout
    rate = REQUESTS_PER_SECOND.search(output)
    count = REQUEST_COUNT.search(output)
    if not rate or not count:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return float(rate.group(1)), int(count.group(1))


def fetch_headers(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.headers


def forwarded_requests(squid, path):
    """Return how many requests for *path* Squid has sent to the instance so far."""
    return sum(1 for entry in squid.access_log_entries() if entry.path == path and not entry.hit)


def start_site(workdir):
    instance = Instance(workdir, "benchsite", "haops")
    instance.create({"anonymous-user": "anon", "anonymous-password": "anon"})
    paths = {}
    for name, side in (("small", 260), ("large", 1300)):
        path = Path(workdir) / f"{name}.png"
        path.write_bytes(noise_png(side, seed=side))
        paths[name] = str(path)
    output = instance.shell(SETUP_SCRIPT.format(paths=paths))
    images = eval_result(output)
    instance.start()
    urls = {
        name: f"/file/{eid}/raw/{fingerprint_of(data_hash)}/{name}.png"
        for name, (eid, data_hash) in images.items()
    }
    sizes = {name: Path(path).stat().st_size for name, path in paths.items()}
    return instance, urls, sizes


def eval_result(output):
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def summary(values):
    return min(values), statistics.median(values), max(values)


def squid_case(instance, squid, path, repeats):
    direct_url = f"{instance.url}{path}"
    cached_url = f"{squid.url}{path}"
    fetch_headers(cached_url)  # the one miss that fills the cache

    direct, cached, per_thousand = [], [], []
    for _ in range(repeats):
        direct.append(run_wrk(direct_url)[0])
        before = forwarded_requests(squid, path)
        rate, count = run_wrk(cached_url)
        cached.append(rate)
        per_thousand.append(1000 * (forwarded_requests(squid, path) - before) / count)
    return direct, cached, per_thousand


def conditional_case(instance, path, repeats):
    url = f"{instance.url}{path}"
    etag = fetch_headers(url)["ETag"]
    full, conditional = [], []
    for _ in range(repeats):
        full.append(run_wrk(url, connections=1, threads=1)[0])
        conditional.append(run_wrk(url, [f"If-None-Match: {etag}"], connections=1, threads=1)[0])
    return full, conditional


def report(sizes, squid_results, conditional_results, repeats):
    direct, cached, per_thousand = squid_results
    full, conditional = conditional_results
    hit_ratio = statistics.median(cached) / statistics.median(direct)
    # The cost of a request is the inverse of the rate of one connection.
    cost_ratio = statistics.median(full) / statistics.median(conditional)

    def row(label, values, unit):
        low, median, high = summary(values)
        return f"| {label} | {low:.1f} / {median:.1f} / {high:.1f} {unit} |"

    lines = [
        "## Images through Squid against straight to the instance",
        "",
        f"A {sizes['small']}-byte PNG at its fingerprinted URL, public. `wrk -t{WRK_THREADS}"
        f" -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s`, {repeats} runs each, alternated, after one"
        " request that fills the cache.",
        "",
        "| path | min / median / max |",
        "|---|---|",
        row("straight to the instance", direct, "requests/s"),
        row("through Squid", cached, "requests/s"),
        row("instance requests per 1,000 through Squid", per_thousand, ""),
        "",
        f"- Hits at least {HIT_RATIO_TARGET:g} times the direct throughput:"
        f" {'met' if hit_ratio >= HIT_RATIO_TARGET else 'MISSED'} ({hit_ratio:.1f} times).",
        f"- One instance request per image per cache lifetime:"
        f" {'met' if max(per_thousand) == 0 else 'MISSED'}"
        " (requests that Squid forwarded, from its access log, after the one that"
        " filled the cache).",
        "",
        "## Conditional request against full download",
        "",
        f"A {sizes['large']}-byte PNG straight from the instance, one connection"
        f" (`wrk -t1 -c1 -d{WRK_SECONDS}s`), {repeats} runs each, alternated.",
        "",
        "| request | min / median / max |",
        "|---|---|",
        row("full 200", full, "requests/s"),
        row("304 (If-None-Match)", conditional, "requests/s"),
        "",
        f"- The 304 costs at most {CONDITIONAL_RATIO_TARGET:.0%} of the 200:"
        f" {'met' if cost_ratio <= CONDITIONAL_RATIO_TARGET else 'MISSED'}"
        f" ({cost_ratio:.1%}).",
        "",
        "A 304 reads no image bytes: it costs the fixed price of any request to the"
        " instance (HTTP server, pyramid, a database connection, the query for the"
        " image's attributes and the permission checks), which sets its floor. On"
        " SQLite on the same host the bytes of the 200 cost little more than that.",
        "",
    ]
    return "\n".join(lines)


def section(repeats):
    """Run both cases and return their Markdown report."""
    if shutil.which(WRK) is None:
        raise RuntimeError("wrk not found: install Debian's wrk package (make system-packages)")
    workdir = tempfile.mkdtemp(prefix="haops-bench-")
    # Squid drops to its own user, which must reach its directory below.
    os.chmod(workdir, 0o755)
    instance = squid = None
    try:
        instance, urls, sizes = start_site(workdir)
        squid = Squid(Path(workdir) / "squid", instance.port)
        squid.start()
        squid_results = squid_case(instance, squid, urls["small"], repeats)
        conditional_results = conditional_case(instance, urls["large"], repeats)
    finally:
        if squid is not None:
            squid.stop()
        if instance is not None:
            instance.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report(sizes, squid_results, conditional_results, repeats)


if __name__ == "__main__":
    print(section(3))
