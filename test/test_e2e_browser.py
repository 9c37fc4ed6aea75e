"""An editor replaces an image through the edit form, in headless Chromium,
on a real instance process on SQLite.

The browser does what a person would. It logs in through the login form,
picks a PNG file in the edit form's file input and clicks "validate". Then it
follows CubicWeb's redirect, loads the images and follows the 301 of the old
image URL.
"""

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By

from harness.browser import chromium, fetch, load_image, wait_for
from harness.instance import Instance
from images import decoded_size, fingerprint, image_bytes

EDITOR = ("editor", "editor-password")
OLD_NAME = "lamp.png"
OLD_SIZE = (8, 8)
NEW_NAME = "lamp-blue.png"
# A size unlike the old one, so that the decoded size shows which image loaded.
NEW_SIZE = (13, 7)
ENTITY_PATH = re.compile(r"/(?:file/)?(\d+)")

# Run in `cubicweb-ctl shell`, which provides `cnx` and `commit`. It prints
# one JSON line of eids, after whatever the shell itself prints.
SETUP_SCRIPT = """
import json
from cubicweb import Binary

users = cnx.find("CWGroup", name="users").one()
cnx.create_entity("CWUser", login={login!r}, upassword={password!r}, in_group=users)
with open({image_path!r}, "rb") as image_file:
    image = cnx.create_entity(
        "File",
        data=Binary(image_file.read()),
        data_name={image_name!r},
        data_format="image/png",
        title="lamp picture",
    )
product = cnx.create_entity("Product", name="lamp", main_image=image)
commit()
print(json.dumps({{"image": image.eid, "product": product.eid}}))
"""


@pytest.fixture(scope="module")
def site(instance_root):
    """Create and start an instance with an editor, a PNG File and a Product showing it."""
    instance = Instance(instance_root, "browsersite", "haops,haopstest")
    instance.create()
    # NOTE: with the default pyramid.ini, the page of the new File after the
    # edit is CubicWeb's plain one, with no <img>: not covered here.
    instance.use_cubicweb_web_pages()
    old_image = Path(instance_root) / OLD_NAME
    old_image.write_bytes(image_bytes("png", "red", OLD_SIZE))
    output = instance.shell(
        SETUP_SCRIPT.format(
            login=EDITOR[0], password=EDITOR[1], image_path=str(old_image), image_name=OLD_NAME
        )
    )
    instance.eids = json.loads(output.strip().splitlines()[-1])
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def new_image(tmp_path):
    """Return the absolute path of the PNG that the editor uploads.

    A file input accepts only an absolute path.
    """
    path = tmp_path / NEW_NAME
    path.write_bytes(image_bytes("png", "blue", NEW_SIZE))
    return path.resolve()


def log_in(browser, site, login, password):
    browser.get(f"{site.url}/login")
    login_field = wait_for(
        browser, lambda driver: driver.find_element(By.NAME, "__login"), "the login form"
    )
    login_field.send_keys(login)
    browser.find_element(By.NAME, "__password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "#loginForm button[type=submit]").click()
    wait_for(
        browser,
        lambda driver: not driver.find_elements(By.NAME, "__login"),
        "the page that follows a successful login",
    )


def entity_page_eid(url):
    """Return the eid of an entity page URL (``/<eid>`` or ``/file/<eid>``), else None."""
    parts = urlsplit(url)
    match = ENTITY_PATH.fullmatch(parts.path)
    if match is None or "vid=" in parts.query:
        return None
    return int(match.group(1))


def page_urls(browser):
    """Return the image sources and link targets of the current page, resolved."""
    return browser.execute_script(
        "return [...document.images].map(i => i.src)"
        ".concat([...document.links].map(a => a.href));"
    )


def test_edit_form_replaces_image(site, browser, new_image):
    old = site.eids["image"]
    log_in(browser, site, *EDITOR)

    browser.get(f"{site.url}/{old}?vid=edition")
    file_input = wait_for(
        browser,
        lambda driver: driver.find_element(By.NAME, f"data-subject:{old}"),
        "the file input of the edit form",
    )
    file_input.send_keys(str(new_image))
    browser.find_element(By.CSS_SELECTOR, "#entityForm button[type=submit]").click()
    # The form posts into a hidden frame. The response makes the page go to
    # the edited entity, which is now the new File.
    new = wait_for(
        browser,
        lambda driver: entity_page_eid(driver.current_url),
        "the page of the edited entity",
    )
    # Image URLs carry the fingerprint of the bytes they serve.
    new_raw_url = f"{site.url}/file/{new}/raw/{fingerprint(new_image.read_bytes())}/{NEW_NAME}"

    assert new != old
    assert new_raw_url in page_urls(browser)

    page_image = browser.find_element(By.CSS_SELECTOR, f'img[src="{new_raw_url}"]')
    wait_for(
        browser,
        lambda driver: driver.execute_script("return arguments[0].complete;", page_image),
        "the image of the page",
    )
    shown_size = browser.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight];", page_image
    )
    assert tuple(shown_size) == NEW_SIZE

    # Opened as a page, a raw URL starts a download, because cubicweb-file
    # serves it as an attachment. So the page fetches it instead.
    old_raw_url = f"{site.url}/file/{old}/raw/{OLD_NAME}"
    followed = fetch(browser, old_raw_url)
    assert followed.get("url") == new_raw_url, followed
    assert followed.get("redirected") is True, followed
    assert followed.get("status") == 200, followed

    # An <img> that names the old URL, as in a page cached before the
    # upload, shows the new image.
    assert load_image(browser, old_raw_url) == {
        "loaded": True,
        "width": NEW_SIZE[0],
        "height": NEW_SIZE[1],
    }

    browser.get(f"{site.url}/{old}")
    assert urlsplit(browser.current_url).path == f"/{new}"

    assert site.sql(
        "SELECT cw_replacement_file FROM cw_FileReplacement WHERE cw_replaced_eid = ?", (old,)
    ) == [(new,)]
    assert site.sql(
        "SELECT cw_main_image FROM cw_Product WHERE cw_eid = ?", (site.eids["product"],)
    ) == [(new,)]
    assert site.sql("SELECT cw_eid FROM cw_File WHERE cw_eid = ?", (old,)) == []
    ((stored,),) = site.sql("SELECT cw_data FROM cw_File WHERE cw_eid = ?", (new,))
    assert decoded_size(bytes(stored)) == NEW_SIZE
