/**
 * The native ceiling baseline, bench/native: quiche-peer, a Rust program that plays the quichex
 * scenarios over the same quiche with plain sockets. It speaks to bench/run.ts in `WorkerMessage`s
 * printed one JSON object a line on stdout, and stops when its stdin closes (see the header of
 * bench/native/src/main.rs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const manifest = fileURLToPath(new URL('./native/Cargo.toml', import.meta.url));

/** The release binary, where cargo leaves it (bench/native/target is gitignored). */
export const NATIVE_PEER = fileURLToPath(new URL('./native/target/release/quiche-peer', import.meta.url));

/**
 * Builds quiche-peer if it is missing or stale (cargo decides, and does nothing when it is up to
 * date). Returns why the build failed, or `undefined` when the binary is ready.
 */
export function buildNativePeer(): string | undefined {
  const fresh = !existsSync(NATIVE_PEER);
  if (fresh) console.error('building bench/native (the first build compiles BoringSSL: a few minutes)');
  const args = ['build', '--release', '--manifest-path', manifest, ...(fresh ? [] : ['--quiet'])];
  // cargo's output goes to stderr, with the progress lines, so that stdout holds only the table.
  const result = spawnSync('cargo', args, { stdio: ['ignore', 2, 'inherit'] });
  if (result.error) return `cannot run cargo: ${result.error.message}`;
  if (result.status !== 0) return `cargo build exited with ${result.signal ?? `code ${result.status}`}`;
  return existsSync(NATIVE_PEER) ? undefined : `cargo build left no ${NATIVE_PEER}`;
}
