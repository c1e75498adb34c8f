// Builds the explorer's bundle: explorer/src -> node/rpc/explorer_bundle (or --out DIR).
//
// esbuild bundles src/main.jsx and everything it imports (preact, dagre, viem, the precompiles'
// ABI JSON) into one script and one stylesheet named by their content hash; index.html names
// them. build.json lists every file the node may serve with its size and SHA-256, and the digest
// of the sources, so a test can tell a stale bundle without a JavaScript toolchain:
//
//   sources = sha256( for each source file, sorted by its path from the repository root:
//                     path + "\0" + sha256(file) in hex + "\n" )
//
// over SOURCES below. The same sources and lockfile give the same bytes (esbuild is
// deterministic), which the test that rebuilds checks.
//
// Run it through scripts/build_explorer.sh (installs the pinned packages first).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const DEFAULT_OUT = join(REPO, 'node', 'rpc', 'explorer_bundle');

/** What the bundle is built from (its digest is in build.json). */
export function sourceFiles() {
  const walk = (dir) => readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
  const abi = join(REPO, 'ai_precompiles', 'abi');
  return [
    ...walk(join(HERE, 'src')),
    join(HERE, 'package.json'),
    join(HERE, 'package-lock.json'),
    join(HERE, 'build.mjs'),
    join(REPO, 'scripts', 'build_explorer.sh'),
    ...readdirSync(abi).filter((n) => n.endsWith('.json')).map((n) => join(abi, n)),
  ].map((p) => relative(REPO, p).split(sep).join('/')).sort();
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

export function sourcesDigest() {
  const lines = sourceFiles().map((path) => `${path}\0${sha256(readFileSync(join(REPO, path)))}\n`);
  return sha256(lines.join(''));
}

async function build(out) {
  const result = await esbuild.build({
    entryPoints: [join(HERE, 'src', 'main.jsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome114', 'firefox135', 'safari18'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    loader: { '.json': 'json' },
    entryNames: 'assets/app-[hash]',
    outdir: 'bundle',
    absWorkingDir: REPO,
    write: false,
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'warning',
  });
  const files = new Map();
  let js;
  let css;
  for (const file of result.outputFiles) {
    const name = relative(join(REPO, 'bundle'), file.path).split(sep).join('/');
    files.set(name, Buffer.from(file.contents));
    if (name.endsWith('.js')) js = name;
    if (name.endsWith('.css')) css = name;
  }
  if (!js || !css) throw new Error('esbuild produced no script or no stylesheet');
  const index = readFileSync(join(HERE, 'src', 'index.html'), 'utf8').replace('{{JS}}', js).replace('{{CSS}}', css);
  files.set('index.html', Buffer.from(index));

  const manifest = {
    comment: 'Built by scripts/build_explorer.sh from explorer/; the node serves exactly these files (node/rpc/explorer.py).',
    sources: sourcesDigest(),
    esbuild: esbuild.version,
    files: Object.fromEntries([...files.keys()].sort().map((name) => [name, { size: files.get(name).length, sha256: sha256(files.get(name)) }])),
  };
  // Written beside the target and swapped in whole, so a failed build leaves the old bundle.
  const staging = `${out}.new`;
  rmSync(staging, { recursive: true, force: true });
  for (const [name, bytes] of files) {
    mkdirSync(dirname(join(staging, name)), { recursive: true });
    writeFileSync(join(staging, name), bytes);
  }
  writeFileSync(join(staging, 'build.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  if (existsSync(out)) rmSync(out, { recursive: true });
  renameSync(staging, out);
  const size = [...files.values()].reduce((n, b) => n + b.length, 0);
  console.log(`explorer bundle: ${files.size} files, ${size} bytes -> ${relative(process.cwd(), out) || out}`);
}

const args = process.argv.slice(2);
const at = args.indexOf('--out');
await build(at >= 0 ? resolve(args[at + 1]) : DEFAULT_OUT);
