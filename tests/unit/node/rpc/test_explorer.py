"""The explorer's serving (node/rpc/explorer.py), on the shipped bundle and on broken copies of it:
every answer comes from the table read at start, a path never reaches the file system, types and
cache headers are right, and only the node's own page (an IP or localhost origin equal to its
Host) passes for same-origin."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from node.rpc.explorer import (
    ASSET_CACHE,
    BUNDLE_DIR,
    INDEX_CACHE,
    BundleError,
    ExplorerBundle,
    is_explorer_path,
    own_page_origin,
    serve_explorer,
)


def request(bundle: ExplorerBundle, path: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    trio.run(serve_explorer, bundle, scope, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


@pytest.fixture(scope="module")
def bundle() -> ExplorerBundle:
    return ExplorerBundle.load()


def test_pages_get_the_app_and_files_get_themselves(bundle: ExplorerBundle) -> None:
    index = (BUNDLE_DIR / "index.html").read_bytes()
    for page in ("/explorer/", "/explorer/block/12", "/explorer/tx/0x" + "ab" * 32, "/explorer/model/2",
                 "/explorer/receipt/1", "/explorer/validators", "/explorer/governance/"):
        status, headers, body = request(bundle, page)
        assert (status, body) == (200, index), page
        assert headers[b"content-type"] == b"text/html; charset=utf-8"
        assert headers[b"cache-control"] == INDEX_CACHE
        assert b"script-src 'self'" in headers[b"content-security-policy"]
        assert headers[b"x-content-type-options"] == b"nosniff"
    manifest = json.loads((BUNDLE_DIR / "build.json").read_text())
    scripts = [name for name in manifest["files"] if name.endswith(".js")]
    assert scripts and all(name.startswith("assets/") for name in scripts)
    for name in manifest["files"]:
        status, headers, body = request(bundle, f"/explorer/{name}")
        assert status == 200 and body == (BUNDLE_DIR / name).read_bytes(), name
        assert int(headers[b"content-length"]) == len(body)
        expected = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
                    ".html": b"text/html; charset=utf-8"}[Path(name).suffix]
        assert headers[b"content-type"] == expected
        assert headers[b"cache-control"] == (ASSET_CACHE if name.startswith("assets/") else INDEX_CACHE)


def test_a_missing_file_is_404_never_the_app(bundle: ExplorerBundle) -> None:
    for path in ("/explorer/assets/app-NOPE.js", "/explorer/favicon.ico", "/explorer/build.json",
                 "/explorer/assets/", "/explorer/x/y.css", "/explorer/" + "a" * 2000):
        status, _, body = request(bundle, path)
        assert status == 404 and b"<html" not in body, path


def test_traversal_finds_nothing(bundle: ExplorerBundle) -> None:
    """ASGI paths arrive percent-decoded: every spelling of '..' is refused before any lookup,
    and the lookup itself is a dict, never a file name."""
    for path in ("/explorer/../pyproject.toml", "/explorer/../../etc/passwd", "/explorer/assets/../index.html",
                 "/explorer/./index.html", "/explorer/..\\..\\etc\\passwd", "/explorer/..", "/explorer/%2e%2e/x",
                 "/explorer/assets/..%2fbuild.json", "/explorer/\x00", "/explorer//etc/passwd.txt"):
        status, _, body = request(bundle, path)
        assert status in (200, 404), path
        assert status == 404 or body == (BUNDLE_DIR / "index.html").read_bytes(), path
        assert b"root:" not in body and b"[build-system]" not in body


def test_methods_head_and_revalidation(bundle: ExplorerBundle) -> None:
    status, headers, body = request(bundle, "/explorer/", "POST")
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"
    status, headers, body = request(bundle, "/explorer/block/1", "HEAD")
    assert status == 200 and body == b"" and int(headers[b"content-length"]) == len(bundle.index.body)
    etag = headers[b"etag"].decode()
    status, headers, body = request(bundle, "/explorer/", headers={"If-None-Match": f'"other", {etag}'})
    assert (status, body) == (304, b"") and b"content-length" not in headers
    status, headers, _ = request(bundle, "/explorer")
    assert status == 308 and headers[b"location"] == b"/explorer/"


def test_gzip_only_when_asked(bundle: ExplorerBundle) -> None:
    script = next(name for name in bundle.assets if name.endswith(".js"))
    status, headers, body = request(bundle, f"/explorer/{script}", headers={"Accept-Encoding": "gzip, br"})
    assert status == 200 and headers[b"content-encoding"] == b"gzip"
    assert gzip.decompress(body) == bundle.assets[script].body and len(body) < len(bundle.assets[script].body)
    status, headers, body = request(bundle, f"/explorer/{script}")
    assert b"content-encoding" not in headers and body == bundle.assets[script].body


def test_only_the_explorer_prefix_is_the_explorers() -> None:
    assert is_explorer_path("/explorer") and is_explorer_path("/explorer/") and is_explorer_path("/explorer/block/1")
    assert not is_explorer_path("/") and not is_explorer_path("/explorers") and not is_explorer_path("/explorer.js")


def test_own_page_origin_is_an_ip_or_localhost_equal_to_host() -> None:
    assert own_page_origin("http://127.0.0.1:8545", "127.0.0.1:8545")
    assert own_page_origin("http://localhost:8545", "localhost:8545")
    assert own_page_origin("http://[::1]:8545", "[::1]:8545")
    assert own_page_origin("https://10.0.0.5:443", "10.0.0.5:443")
    # DNS rebinding: a name the attacker controls, pointed at this node, is not our page.
    assert not own_page_origin("http://evil.example:8545", "evil.example:8545")
    assert not own_page_origin("http://127.0.0.1.nip.io:8545", "127.0.0.1.nip.io:8545")
    # another port, another host, or a header missing
    assert not own_page_origin("http://127.0.0.1:3000", "127.0.0.1:8545")
    assert not own_page_origin("http://127.0.0.1:8545", None)
    assert not own_page_origin("null", "127.0.0.1:8545")
    assert not own_page_origin("file://127.0.0.1:8545", "127.0.0.1:8545")


def copy_bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE_DIR, root)
    return root


def test_a_changed_file_stops_the_explorer(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    script = next((root / "assets").glob("*.js"))
    script.write_bytes(script.read_bytes() + b"\n// edited")
    with pytest.raises(BundleError, match="does not match build.json"):
        ExplorerBundle.load(root)


def test_a_missing_or_foreign_file_stops_the_explorer(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    (root / "index.html").unlink()
    with pytest.raises(BundleError, match="lacks index.html"):
        ExplorerBundle.load(root)
    for bad in ("../pyproject.toml", "assets/../../x.js", "assets/tool.exe", "/etc/passwd.txt"):
        root = copy_bundle(tmp_path / bad.replace("/", "_"))
        manifest = json.loads((root / "build.json").read_text())
        manifest["files"][bad] = {"size": 1, "sha256": "00"}
        (root / "build.json").write_text(json.dumps(manifest))
        with pytest.raises(BundleError, match="not a plain bundle file"):
            ExplorerBundle.load(root)
    with pytest.raises(BundleError, match="missing or broken"):
        ExplorerBundle.load(tmp_path / "nowhere")


def test_files_on_disk_but_not_listed_are_never_served(tmp_path: Path) -> None:
    root = copy_bundle(tmp_path)
    (root / "assets" / "secret.js").write_text("secret")
    status, _, body = request(ExplorerBundle.load(root), "/explorer/assets/secret.js")
    assert status == 404 and b"secret" not in body
