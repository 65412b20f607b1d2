#!/usr/bin/env node
// Builds the native binding when it is missing or older than its sources, so that `npm test`
// and `npm start` work on a fresh checkout. BoringSSL + quiche take minutes on a cold machine,
// so the build is skipped whenever the hash of the Rust sources matches the last build's.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const binding = join(root, 'binding');
const stamp = join(binding, '.build-stamp');

function sources(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? sources(path) : [path];
    });
}

function sourceHash() {
  const hash = createHash('sha256');
  const files = [
    ...sources(join(binding, 'src')),
    join(binding, 'Cargo.toml'),
    join(binding, 'Cargo.lock'),
    join(binding, 'build.rs'),
  ];
  for (const file of files) {
    if (existsSync(file)) hash.update(file.slice(root.length)).update(readFileSync(file));
  }
  return hash.digest('hex');
}

function have(command, args = ['--version']) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** bindgen (used by boring-sys) needs libclang; cmake and a C++ compiler build BoringSSL. */
function ensureSystemPackages() {
  const missing = [];
  if (!have('cargo')) {
    console.error('quichex: Rust is required to build the native binding: install it with rustup.');
    process.exit(1);
  }
  if (!have('cmake')) missing.push('cmake');
  if (!have('c++')) missing.push('g++');
  const libclang = spawnSync('sh', ['-c', 'ldconfig -p | grep -q libclang'], { stdio: 'ignore' });
  if (libclang.status !== 0 && !process.env.LIBCLANG_PATH) missing.push('libclang-dev');
  if (missing.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  if (isRoot && have('apt-get', ['--help'])) {
    console.error(`quichex: installing ${missing.join(' ')} with apt-get`);
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit' });
    return;
  }
  console.error(
    `quichex: the native build needs ${missing.join(', ')}. On Debian/Ubuntu run:\n` +
      `  sudo apt-get install -y ${missing.join(' ')}`,
  );
  process.exit(1);
}

/** A fresh checkout has no node_modules: install them (the lockfile's exact versions). */
function ensureNodeModules() {
  if (existsSync(join(root, 'node_modules', '.bin', 'napi')) && existsSync(join(root, 'node_modules', '.bin', 'tsx')))
    return;
  console.error('quichex: installing npm dependencies');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

ensureNodeModules();
const built = readdirSync(binding).some((f) => f.endsWith('.node'));
const hash = sourceHash();
if (built && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) process.exit(0);

ensureSystemPackages();
console.error('quichex: building the native binding (BoringSSL + quiche; minutes on a cold machine)');
const napi = join(root, 'node_modules', '.bin', 'napi');
const result = spawnSync(
  napi,
  [
    'build',
    '--platform',
    '--release',
    '--manifest-path',
    'binding/Cargo.toml',
    '--output-dir',
    'binding',
    '--js',
    'index.js',
    '--dts',
    'index.d.ts',
    '--js-package-name',
    'quichex',
  ],
  { cwd: root, stdio: 'inherit' },
);
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(stamp, hash);
