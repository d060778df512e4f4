"""A ``requests`` session for plugins: pooled, with timeouts, a User-Agent and error mapping.

Every plugin talks HTTP the same way, so status codes are mapped onto ``core.errors`` once,
here: 401/403 -> ``AuthError``, 429 -> ``RateLimited`` (honouring ``Retry-After``), 408 and 5xx
but 501 -> ``TransientError``, timeouts and connection errors -> ``TransientError``, any other
4xx -> ``PermanentError``. A plugin that needs to act on a status itself (404 meaning "create
instead", say) lists it in ``passthrough``; a platform that signals an error its own way (a
rate limit answered as a 400 with a code) says so in ``platform_error``.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import LocationValueError

from pointbridge.contract.errors import (
    AuthError,
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from pointbridge.kit import ratelimit
from pointbridge.kit.ratelimit import Pacer

if TYPE_CHECKING:
    from pointbridge.contract.platform import Integration

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read


def _user_agent() -> str:
    try:
        return f"pointbridge/{version('pointbridge')}"
    except PackageNotFoundError:
        return "pointbridge/dev"


# A reset header above this (2001-09-09 in epoch seconds) is a moment, not seconds to wait.
_EPOCH_THRESHOLD = 1_000_000_000


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``RateLimit-Reset``-style header (``X-RateLimit-Reset``...),
    which platforms send either as seconds from now or as the epoch second the window reopens:
    a value that can only be a moment is read as one."""
    reset = parse_retry_after(value, now)
    if reset is not None and reset > _EPOCH_THRESHOLD:
        return max(0.0, reset - (time.time() if now is None else now))
    return reset


def error_summary(response: requests.Response, limit: int = 300) -> str:
    """The platform's own error text, shortened, for messages and logs.

    The body of an error response never holds our credentials, unlike the request.
    """
    text = response.text.strip().replace("\n", " ")
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


def json_object(response: requests.Response) -> dict[str, Any]:
    """The body of a successful response as a JSON object. Anything else (a proxy's or a
    maintenance page's HTML, a bare list) is a ``TransientError``: worth another try later."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # The path only: some platforms take their key in the query string.
        where = f"{response.request.method} {urlsplit(response.url).path}"
        raise TransientError(f"{where}: not a JSON object ({error_summary(response, 200)})")
    return body


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def encode_json(value: Any) -> bytes:
    """A request body as compact UTF-8 JSON. orjson, not the standard library: an export's
    bodies (thousands of contacts a call) took a tenth of pointbridge's CPU per contact in
    ``json.dumps`` alone, and orjson encodes them about ten times faster. Non-string keys
    become strings, as ``json.dumps`` made them: only when there are some, since asking for
    it costs orjson 80 % more on every body."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


class ApiClient:
    """One platform account's HTTP client.

    :param base_url: the API root; paths passed to ``request`` are joined onto it
    :param auth: a ``requests`` auth (e.g. ``("user", "key")`` for Basic)
    :param headers: sent with every request (an API-key header, say)
    :param auth_message: what an ``AuthError`` tells the admin ("Check the e-mail and API key")
    :param url_setting: the setting that holds ``base_url``, which the admin is told to set
        again when the HTTP client cannot send to its host
    :param retry_after: reads the wait from a 429 response; the default reads ``Retry-After``.
        Platforms that signal differently (``RateLimit-Reset``) pass their own.
    :param platform_error: the platform's own reading of a failed response, asked before the
        status mapping and ``passthrough``: the error it returns is raised (a 400 whose code
        says "rate limited" -> ``RateLimited``), ``None`` leaves the response to the mapping
    :param pacer: the integration's shared budget, ``core.ratelimit.pacer_for(integration.id,
        platform.rate_limit)``: every request waits for its slot, so a call that makes many
        requests stays under the platform's limit together with everything else sent
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Any = None,
        headers: Mapping[str, str] | None = None,
        auth_message: str = "The platform refused the credentials; check them.",
        url_setting: str = "api_url",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_after: Callable[[requests.Response], float | None] | None = None,
        pool_size: int = 8,
        pacer: Pacer | None = None,
        platform_error: Callable[[requests.Response], DeliveryError | None] | None = None,
    ) -> None:
        self.pacer = pacer
        self.platform_error = platform_error
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.auth_message = auth_message
        self.url_setting = url_setting
        self._retry_after = retry_after or (
            lambda response: parse_retry_after(response.headers.get("Retry-After"))
        )
        self.session = requests.Session()
        # Never None: without an auth, requests searches ~/.netrc on every request, and a
        # platform's credentials come from the integration's settings, not from there.
        self.session.auth = auth or _no_auth
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"User-Agent": _user_agent(), "Accept": "application/json", **(headers or {})}
        )

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        passthrough: Collection[int] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; return the response when it succeeded or is in ``passthrough``."""
        kwargs.setdefault("timeout", self.timeout)
        if "json" in kwargs:
            # Encoded before the pacer's wait, as requests would, so the request leaves as its
            # slot comes, not a large body's encoding later.
            kwargs["data"] = encode_json(kwargs.pop("json"))
            headers = kwargs["headers"] = dict(kwargs.get("headers") or {})
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        if self.pacer is not None:
            self.pacer.request()
        try:
            response = self.session.request(method, self.url(path), **kwargs)
        except requests.Timeout as exc:
            raise TransientError(f"{method} {path}: the platform did not answer in time") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"{method} {path}: could not connect to the platform") from exc
        except (requests.exceptions.InvalidURL, LocationValueError) as exc:
            # A host the HTTP client cannot send to (saved before settings were checked as
            # they are now, or refused only by its parser): no retry can change that, so the
            # integration waits for an admin. The URL itself is not quoted: it may hold a
            # proxy's password.
            host = urlsplit(self.base_url).hostname
            raise ConfigurationError(
                f"{method} {path}: the API URL's host {host!r} is not one HTTP can be sent to; "
                f"set {self.url_setting} again."
            ) from exc
        if not response.ok and self.platform_error is not None:
            error = self.platform_error(response)
            if error is not None:
                raise error
        if response.ok or response.status_code in passthrough:
            return response
        raise self.classify(method, path, response)

    def classify(
        self, method: str, path: str, response: requests.Response
    ) -> AuthError | RateLimited | TransientError | PermanentError:
        """The error that a failed response stands for."""
        status = response.status_code
        detail = f"{method} {path}: {error_summary(response)}"
        if status in (401, 403):
            return AuthError(f"{self.auth_message} ({detail})")
        if status == 429:
            return RateLimited(detail, retry_after=self._retry_after(response))
        if status == 408 or (status >= 500 and status != 501):
            return TransientError(detail)
        return PermanentError(detail)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def close(self) -> None:
        self.session.close()


# (integration id, base URL, paced, limit name) -> (digest of the credentials, the client)
_clients: dict[tuple[int, str, bool, str | None], tuple[str, ApiClient]] = {}
_clients_lock = threading.Lock()


def _credentials_digest(auth: Any, headers: Mapping[str, str] | None, timeout: object) -> str:
    # The cache key holds a digest, never the credentials themselves.
    material = repr((auth, sorted((headers or {}).items()), timeout))
    return hashlib.sha256(material.encode()).hexdigest()


def client_for(
    integration: Integration,
    base_url: str,
    *,
    auth: Any = None,
    headers: Mapping[str, str] | None = None,
    auth_message: str = "The platform refused the credentials; check them.",
    url_setting: str = "api_url",
    retry_after: Callable[[requests.Response], float | None] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    paced: bool = True,
    limit: str | None = None,
    platform_error: Callable[[requests.Response], DeliveryError | None] | None = None,
) -> ApiClient:
    """``Integration.client``: one kept ``ApiClient`` per integration, URL and pacing.

    New credentials make a new client; the old one is dropped, not closed, because a call in
    another thread (the worker's, during an admin's re-install) may still be using it.
    ``paced=False`` is for requests the platform counts apart from its main limit (a status
    poll, a call tier of its own). ``limit="<name>"`` paces under the platform's named limit
    (``Platform.rate_limits``) instead of its main one: a platform that counts some endpoints
    apart gets one client for each budget. The pacer is looked up on every call, not fixed at
    construction: ``pacer_for`` hands out a new pacer when the limit changes, and the host and
    the client must share the same one.
    """
    if limit is not None and limit not in integration.rate_limits:
        raise ValueError(f"The platform {integration.platform} declares no rate limit {limit!r}.")
    key = (integration.id, base_url, paced, limit)
    digest = _credentials_digest(auth, headers, timeout)
    with _clients_lock:
        cached = _clients.get(key)
        if cached is not None and cached[0] == digest:
            client = cached[1]
        else:
            client = ApiClient(
                base_url,
                auth=auth,
                headers=headers,
                auth_message=auth_message,
                url_setting=url_setting,
                retry_after=retry_after,
                timeout=timeout,
                platform_error=platform_error,
            )
            _clients[key] = (digest, client)
    if paced and limit is not None:
        client.pacer = ratelimit.pacer_for(integration.id, integration.rate_limits[limit], limit)
    elif paced:
        client.pacer = ratelimit.pacer_for(integration.id, integration.rate_limit)
    return client
