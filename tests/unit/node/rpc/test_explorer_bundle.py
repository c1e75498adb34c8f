"""The committed explorer bundle (node/rpc/explorer_bundle) is what scripts/build_explorer.sh
builds from explorer/ today, and it ships in the package.

Two checks, the first needing no JavaScript toolchain: the digest of the sources recorded in
build.json equals the digest of the sources in the tree (so editing explorer/src, the lockfile,
the build or the precompiles' ABI without rebuilding fails here), and a rebuild into a temporary
folder gives the committed files byte for byte (esbuild is deterministic for pinned packages).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shutil
import subprocess
import tomllib

from ai_precompiles.addresses import BY_NAME, DEFAULT_TREASURY
from node.rpc.explorer import BUNDLE_DIR, ExplorerBundle
from tests.support.procs import REPO

EXPLORER = REPO / "explorer"


def source_files() -> list[str]:
    """The sources build.json's digest covers (explorer/build.mjs, sourceFiles: the same list)."""
    files = [p for p in (EXPLORER / "src").rglob("*") if p.is_file()]
    files += [EXPLORER / "package.json", EXPLORER / "package-lock.json", EXPLORER / "build.mjs",
              REPO / "scripts" / "build_explorer.sh", *(REPO / "ai_precompiles" / "abi").glob("*.json")]
    return sorted(p.relative_to(REPO).as_posix() for p in files)


def sources_digest() -> str:
    lines = "".join(f"{path}\0{hashlib.sha256((REPO / path).read_bytes()).hexdigest()}\n" for path in source_files())
    return hashlib.sha256(lines.encode()).hexdigest()


def manifest() -> dict:
    return json.loads((BUNDLE_DIR / "build.json").read_text())


def test_the_bundle_was_built_from_these_sources() -> None:
    assert manifest()["sources"] == sources_digest(), (
        "explorer/ changed since the bundle was built: run scripts/build_explorer.sh and commit "
        "node/rpc/explorer_bundle")


def test_the_bundle_holds_exactly_its_listed_files() -> None:
    listed = set(manifest()["files"])
    on_disk = {p.relative_to(BUNDLE_DIR).as_posix() for p in BUNDLE_DIR.rglob("*") if p.is_file()} - {"build.json"}
    assert on_disk == listed
    bundle = ExplorerBundle.load()  # sizes and hashes checked
    index = bundle.index.body.decode()
    for name in listed - {"index.html"}:
        assert f'"/explorer/{name}"' in index, name


def test_the_package_ships_the_bundle() -> None:
    """pyproject's package-data globs match every file of the bundle and its manifest."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = data.get("node.rpc", [])
    for path in [*manifest()["files"], "build.json"]:
        rel = f"explorer_bundle/{path}"
        assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} is not in package-data['node.rpc']"


def test_the_page_names_the_precompiles_where_the_chain_has_them() -> None:
    source = (EXPLORER / "src" / "chain.js").read_text()
    for name, address in BY_NAME.items():
        assert re.search(rf"{name}: {{ address: '0x{address.hex()}'", source), name
    assert f"TREASURY = '0x{DEFAULT_TREASURY.hex()}'" in source


def test_a_rebuild_gives_the_committed_bytes(tmp_path) -> None:
    assert shutil.which("node"), "node is not on PATH"
    assert (EXPLORER / "node_modules" / "esbuild").is_dir(), (
        "explorer/node_modules is missing: scripts/install.sh runs npm ci --prefix explorer")
    out = tmp_path / "bundle"
    done = subprocess.run(["node", str(EXPLORER / "build.mjs"), "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    built = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(BUNDLE_DIR).as_posix(): p.read_bytes() for p in BUNDLE_DIR.rglob("*") if p.is_file()}
    assert sorted(built) == sorted(committed)
    for name, data in built.items():
        assert data == committed[name], f"{name} differs from a fresh build: run scripts/build_explorer.sh"
