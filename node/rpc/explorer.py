"""The explorer: the static web app a node serves at ``/explorer`` on its JSON-RPC port.

The app (``explorer/`` in the repository, built by ``scripts/build_explorer.sh``) is a bundle of
a few files shipped in the package beside this module (``explorer_bundle/``), listed with their
sizes and SHA-256 in its ``build.json``. The page reads the chain only through the node's public
JSON-RPC on the same origin (HTTP POST and ``eth_subscribe`` over WebSocket), so it can show
nothing a JSON-RPC client could not read.

Serving is bounded by construction: the listed files are read and checked once, when the node
starts, and a request is answered from that in-memory table alone. No part of a request's path
is ever given to the file system, so there is no traversal to guard against, and every answer's
size is known before the node listens. Any other path under ``/explorer/`` that does not look
like a file (no dot in its last segment) is one of the app's pages (``/explorer/block/12``) and
gets ``index.html``; the app routes it in the browser. Hashed asset names are cached for a year
(``immutable``); ``index.html`` is revalidated by its ETag, so a node upgrade is seen at once.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: URL prefix of the app; every path under it is the explorer's, every other path JSON-RPC's.
PREFIX = "/explorer"
#: The built bundle shipped in the package.
BUNDLE_DIR = Path(__file__).with_name("explorer_bundle")
#: The bundle's manifest: every file served, its size and SHA-256, and the sources' digest.
MANIFEST = "build.json"
#: Bounds of what a bundle may hold (it is ours, but a broken build should fail loudly, not
#: make the node hold a surprise in memory).
MAX_FILES = 64
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
#: Longest request path looked up; a longer one is 404 without further work.
MAX_PATH = 1024

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
#: Types worth compressing (text); images are already compressed.
_COMPRESSIBLE = (".html", ".js", ".css", ".json", ".svg", ".txt")

#: What the page may load and call: its own files and its own origin's JSON-RPC (HTTP and
#: WebSocket), nothing from anywhere else; it may not be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
]
#: An index.html is always revalidated (its ETag), so a node upgrade shows at once; an asset
#: whose name carries its content hash never changes.
INDEX_CACHE = b"no-cache"
ASSET_CACHE = b"public, max-age=31536000, immutable"

Send = Callable[[dict[str, Any]], Awaitable[None]]


class BundleError(ValueError):
    """The explorer's bundle is missing or does not match its manifest."""


@dataclass(frozen=True)
class Asset:
    """One file of the bundle, as it is served."""

    path: str
    """Its path under ``/explorer/`` (``index.html``, ``assets/app-3f2a.js``)."""
    body: bytes
    """Its bytes."""
    gzipped: bytes | None
    """Its bytes gzip-compressed, when that is smaller (text files)."""
    content_type: str
    """Its Content-Type."""
    etag: str
    """Its ETag: a quoted prefix of its SHA-256."""
    immutable: bool
    """Whether its name carries its content hash (cached for a year)."""


class ExplorerBundle:
    """The shipped files, read and checked once; answers requests from memory only."""

    def __init__(self, assets: dict[str, Asset], sources: str) -> None:
        self.assets = assets
        self.sources = sources
        """The digest of the sources the bundle was built from (``build.json``)."""
        self.index = assets["index.html"]

    @classmethod
    def load(cls, root: Path = BUNDLE_DIR) -> ExplorerBundle:
        """Read the bundle that ``root/build.json`` lists; a missing, unlisted-type, oversized
        or altered file is a BundleError naming it (the node refuses to start with --explorer)."""
        try:
            manifest = json.loads((root / MANIFEST).read_text())
            files = manifest["files"]
            sources = str(manifest["sources"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BundleError(f"the explorer bundle is missing or broken ({root / MANIFEST}: {e}); "
                              "rebuild it with scripts/build_explorer.sh") from None
        if not isinstance(files, dict) or not 0 < len(files) <= MAX_FILES or "index.html" not in files:
            raise BundleError(f"{root / MANIFEST}: expected 1 to {MAX_FILES} files, index.html among them")
        assets: dict[str, Asset] = {}
        total = 0
        for name, entry in sorted(files.items()):
            suffix = Path(name).suffix
            parts = name.split("/")
            if suffix not in CONTENT_TYPES or any(part in ("", ".", "..") for part in parts) or "\\" in name:
                raise BundleError(f"{root / MANIFEST}: file {name!r} is not a plain bundle file of a known type")
            try:
                body = (root / name).read_bytes()
            except OSError as e:
                raise BundleError(f"the explorer bundle lacks {name} ({e.strerror})") from None
            total += len(body)
            if total > MAX_BUNDLE_BYTES:
                raise BundleError(f"the explorer bundle is larger than {MAX_BUNDLE_BYTES} bytes")
            digest = hashlib.sha256(body).hexdigest()
            if len(body) != entry.get("size") or digest != entry.get("sha256"):
                raise BundleError(f"the explorer bundle's {name} does not match {MANIFEST} "
                                  "(edited by hand? rebuild it with scripts/build_explorer.sh)")
            gzipped = None
            if suffix in _COMPRESSIBLE:
                packed = gzip.compress(body, compresslevel=9, mtime=0)
                gzipped = packed if len(packed) < len(body) else None
            assets[name] = Asset(name, body, gzipped, CONTENT_TYPES[suffix], f'"{digest[:32]}"',
                                 immutable=name.startswith("assets/"))
        return cls(assets, sources)

    def lookup(self, path: str) -> Asset | None:
        """The asset a request path under PREFIX names: a listed file, else ``index.html`` for a
        page of the app, else None (a file that is not in the bundle)."""
        if len(path) > MAX_PATH:
            return None
        rel = path[len(PREFIX):].lstrip("/")
        if "\\" in rel or "\x00" in rel or any(part in (".", "..") for part in rel.split("/")):
            return None  # nothing to look up, but a dot-dot path is no page of the app either
        found = self.assets.get(rel)
        if found is not None:
            return found
        last = rel.rsplit("/", 1)[-1]
        if rel.startswith("assets/") or "." in last:
            return None  # a file the bundle does not have: never answer a script with HTML
        return self.index


def is_explorer_path(path: str) -> bool:
    """Whether a request path is the explorer's (everything else is JSON-RPC's)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def own_page_origin(origin: str, host: str | None) -> bool:
    """Whether a browser request's ``Origin`` is a page this node served: the very address the
    request was sent to (its ``Host``), when that is an IP address or ``localhost``.

    A host *name* is not enough: a page of evil.example whose name an attacker points at this
    node's address (DNS rebinding) sends an Origin equal to its Host. An IP literal or localhost
    cannot be renamed so, and the only pages on this origin are the explorer's; other names are
    listed with ``--cors-origins``."""
    if not host:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.username:
        return False
    if parts.netloc.lower() != host.lower():
        return False
    name = (parts.hostname or "").lower()
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def serve_explorer(bundle: ExplorerBundle, scope: dict[str, Any], send: Send) -> None:
    """Answer one HTTP request for a path under PREFIX (GET or HEAD; the body is not read)."""
    method = scope["method"]
    path = scope["path"]
    if method not in ("GET", "HEAD"):
        await _respond(send, 405, b"the explorer is read with GET\n", "text/plain; charset=utf-8",
                       [(b"allow", b"GET, HEAD")], method == "HEAD")
        return
    if path == PREFIX:
        await _respond(send, 308, b"", "text/plain; charset=utf-8", [(b"location", (PREFIX + "/").encode())])
        return
    asset = bundle.lookup(path)
    if asset is None:
        await _respond(send, 404, b"not a file of the explorer\n", "text/plain; charset=utf-8",
                       [(b"cache-control", b"no-cache")], method == "HEAD")
        return
    headers = dict(scope.get("headers", []))
    cache = [
        (b"etag", asset.etag.encode()),
        (b"cache-control", ASSET_CACHE if asset.immutable else INDEX_CACHE),
        (b"vary", b"Accept-Encoding"),
    ]
    if_none_match = headers.get(b"if-none-match", b"").decode("latin-1")
    if asset.etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(",")):
        await _respond(send, 304, b"", None, cache, True)
        return
    body = asset.body
    accepts = headers.get(b"accept-encoding", b"").decode("latin-1").lower()
    if asset.gzipped is not None and "gzip" in accepts:
        body = asset.gzipped
        cache.append((b"content-encoding", b"gzip"))
    await _respond(send, 200, body, asset.content_type, cache, method == "HEAD")


async def _respond(send: Send, status: int, body: bytes, content_type: str | None,
                   extra: list[tuple[bytes, bytes]], head_only: bool = False) -> None:
    headers = [*_COMMON_HEADERS, *extra]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only or status == 304 else body})
