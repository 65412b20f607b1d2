#!/usr/bin/env node
// Runs every spec-tests/**/*.test.ts file with node's test runner through tsx. (Node 20's
// runner takes no glob patterns, and its default patterns do not match .ts files.)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function find(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return name === 'fixtures' || name === 'helpers' ? [] : find(path);
      return name.endsWith('.test.ts') ? [relative(root, path)] : [];
    });
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : find(join(root, 'spec-tests'));
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--expose-gc', '--test', '--test-concurrency=1', '--test-timeout=120000', ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
