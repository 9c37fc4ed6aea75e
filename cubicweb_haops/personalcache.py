"""Keep the pages of logged-in users out of shared caches.

CubicWeb sends some pages with a plain ``max-age`` (the startup views, 7200
seconds), which a shared cache may store and serve to anyone. For a
logged-in user such a page carries their name and menus: Squid would hand it
to the next visitor. A response to a request that carries an authentication
cookie therefore gets ``private`` unless its Cache-Control already contains
``public``, ``private`` or ``no-store``. The image views send ``public``
only for what the anonymous user may read, so their responses stay
shareable.
"""

from pyramid.events import NewResponse

# pyramid.ini settings naming CubicWeb's two authentication cookies, and
# their defaults (cubicweb.pyramid.auth).
COOKIE_SETTINGS = {
    "cubicweb.auth.authtkt.session.cookie_name": "auth_tkt",
    "cubicweb.auth.authtkt.persistent.cookie_name": "pauth_tkt",
}
DECIDED = ("public", "private", "no-store")


def authentication_cookies(settings):
    """Return the names of the authentication cookies that *settings* configure."""
    return tuple(settings.get(name) or default for name, default in COOKIE_SETTINGS.items())


def needs_private(cookie_names, request_cookies, cache_control):
    """Tell whether a response with *cache_control* to a request with
    *request_cookies* must be marked private."""
    if not any(name in request_cookies for name in cookie_names):
        return False
    directives = {part.strip().split("=", 1)[0].lower() for part in cache_control.split(",")}
    return not directives.intersection(DECIDED)


def private_marker(cookie_names):
    """Return a NewResponse subscriber that adds ``private`` where
    :func:`needs_private` requires it, for the cookies *cookie_names*."""

    def mark_private(event):
        request, response = event.request, event.response
        cache_control = response.headers.get("Cache-Control", "")
        if needs_private(cookie_names, request.cookies, cache_control):
            response.headers["Cache-Control"] = ", ".join(filter(None, ["private", cache_control]))

    return mark_private


def includeme(config):
    # The cookie names are read once here, not for every response.
    names = authentication_cookies(config.registry.settings)
    config.add_subscriber(private_marker(names), NewResponse)
