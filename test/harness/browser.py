"""Debian's headless Chromium driven by Selenium, for the browser tests.

The browser and its driver come from the ``chromium`` and
``chromium-driver`` packages (``make system-packages``). Selenium gets the
path of both, so it does not run Selenium Manager, which would download them.
"""

import os
import shutil
import tempfile
from contextlib import contextmanager

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TIMEOUT = 30

CHROMIUM_ARGUMENTS = (
    "--headless=new",
    # Chromium exits when run as root with its sandbox, and the tests run as root.
    "--no-sandbox",
    "--window-size=1280,1024",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    # Every host name fails to resolve, so only URLs with an IP address, such
    # as those of the instances on 127.0.0.1, load.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def missing_programs():
    """Return the Chromium programs that are not installed as executables."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]


@contextmanager
def chromium():
    """Start headless Chromium with a new profile, and quit it and remove the profile on exit."""
    missing = missing_programs()
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found: install Debian's chromium and "
            "chromium-driver packages (make system-packages)"
        )
    profile = tempfile.mkdtemp(prefix="haops-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(TIMEOUT)
        driver.set_script_timeout(TIMEOUT)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, description, timeout=TIMEOUT):
    """Wait until *condition(driver)* is true and return its value.

    On timeout, fail with *description* and the URL and title of the page
    that the browser shows.
    """
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"timed out after {timeout} s waiting for {description}, while the browser "
            f"showed {driver.current_url} titled {driver.title!r}"
        ) from None


# The callback of execute_async_script is its last argument.
LOAD_IMAGE_SCRIPT = """
const done = arguments[arguments.length - 1];
const image = new Image();
image.onload = () => done({loaded: true, width: image.naturalWidth, height: image.naturalHeight});
image.onerror = () => done({loaded: false, width: 0, height: 0});
image.src = arguments[0];
"""

FETCH_SCRIPT = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: "same-origin"})
    .then(response => done({
        url: response.url,
        redirected: response.redirected,
        status: response.status,
        type: response.headers.get("Content-Type"),
    }))
    .catch(error => done({error: String(error)}));
"""


def load_image(driver, url):
    """Load *url* in a new <img> element of the current page.

    Return ``{"loaded", "width", "height"}``: the natural size is known only
    once the browser has decoded the image.
    """
    return driver.execute_async_script(LOAD_IMAGE_SCRIPT, url)


def fetch(driver, url):
    """Fetch *url* from the current page, following redirects as the browser does.

    Return the final ``url``, whether the browser was ``redirected``, the
    final ``status`` and Content-Type as ``type``. If the fetch fails, return
    ``error`` instead.
    """
    return driver.execute_async_script(FETCH_SCRIPT, url)
