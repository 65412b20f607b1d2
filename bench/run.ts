/**
 * The quichex benchmark. Every figure is printed beside its baselines measured in the same run:
 * raw `node:dgram` (what Node's UDP sockets carry with no protocol at all), the native ceiling,
 * bench/native's quiche-peer, which plays the same scenarios in plain Rust over the same quiche and
 * transport settings, and, in bulk, echo and handshake, the peer library @matrixai/quic (both ends
 * its own, see bench/matrixai.ts). Servers and clients run in separate processes on loopback.
 *
 *   npm run bench -- [--only <list>] [--runs <n>] [--timeout <s>]
 *                    [--size <MiB>] [--iterations <n>] [--warmup <n>]
 *                    [--conns <list>] [--handshakes <n>] [--handshake-warmup <n>] [--in-flight <list>]
 *                    [--datagram-seconds <s>] [--paused-size <MiB>] [--paused-seconds <s>]
 *                    [--matrixai on|off] [--matrixai-size <MiB>] [--matrixai-iterations <n>]
 *                    [--matrixai-handshakes <n>]
 *
 * Scenarios (--only, comma-separated; all by default): bulk (one stream each way, and
 * PARALLEL_STREAMS streams), echo, handshake (new connections/s and time to first echo, --handshakes
 * connections with each --in-flight count, after --handshake-warmup untimed ones), memory (per
 * idle connection, at each --conns), concurrency (one echo on each of --conns connections at
 * once), datagrams (rate and round trip), paused (RSS while a 1 GiB writer waits on a reader that
 * never reads).
 *
 * Builds quiche-peer with cargo first when it is missing or stale; if that fails, says so and runs
 * the rest without it. Installs @matrixai/quic into bench/node_modules (bench/package.json) when it
 * is missing; if it cannot be installed or loaded, says why, shows its cells as n/a and runs the
 * rest. Being far slower, it moves --matrixai-size MiB in bulk (8 by default), times
 * --matrixai-iterations echoes and opens --matrixai-handshakes connections per handshake run; the
 * table's row labels say so. Prints medians over the runs as a table (figure, baselines, ratios, the
 * issue's target) and writes every sample to bench/results/<date>.json. Each run of each scenario
 * is killed after --timeout seconds (more for many connections). Exits non-zero when any run (or
 * the native build) failed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATAGRAM_PAYLOAD, DATAGRAM_SIZE, ECHO_SIZE, median } from './common.js';
import { attempt, failures } from './harness.js';
import { MATRIXAI_VERSION, prepareMatrixai } from './matrixai.js';
import { buildNativePeer } from './native-peer.js';
import { bulk } from './scenarios/bulk.js';
import { concurrency } from './scenarios/concurrency.js';
import { datagrams } from './scenarios/datagrams.js';
import { echo } from './scenarios/echo.js';
import { handshake } from './scenarios/handshake.js';
import { memory } from './scenarios/memory.js';
import { paused } from './scenarios/paused.js';
import { byKind, type Context, type Kind, type Row, type Scenario, type Settings } from './scenarios/scenario.js';
import { printTable } from './table.js';

const MIB = 1024 * 1024;
const SCENARIOS: Scenario[] = [bulk, echo, handshake, memory, concurrency, datagrams, paused];
/** File descriptors a client process needs beyond one per connection. */
const SPARE_FDS = 200;

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: SCENARIOS.map((s) => s.name).join(',') },
    size: { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
    iterations: { type: 'string', default: '2000' },
    // V8 needs a few thousand round trips to optimise the echo path: over the first 2000 the p50
    // was 228 µs, over 10000 it was 132 µs. Measure the steady state.
    warmup: { type: 'string', default: '5000' },
    timeout: { type: 'string', default: '60' },
    conns: { type: 'string', default: '1000,10000' },
    // A run of 500 lasted 0.4 s with 16 in flight and its rate moved by a fifth from run to run;
    // the first few hundred connections also run code V8 has not optimised yet (as for --warmup).
    handshakes: { type: 'string', default: '2000' },
    'handshake-warmup': { type: 'string', default: '200' },
    'in-flight': { type: 'string', default: '1,16,64' },
    'datagram-seconds': { type: 'string', default: '2' },
    'paused-size': { type: 'string', default: '1024' },
    'paused-seconds': { type: 'string', default: '5' },
    matrixai: { type: 'string', default: 'on' },
    'matrixai-size': { type: 'string', default: '8' },
    'matrixai-iterations': { type: 'string', default: '500' },
    'matrixai-handshakes': { type: 'string', default: '100' },
  },
});

/** `--name`'s value as positive numbers (a comma-separated list where `list`). */
function numbers(name: keyof typeof values, list = false): number[] {
  const raw = String(values[name]);
  const parsed = (list ? raw.split(',') : [raw]).map(Number);
  for (const v of parsed)
    if (!(v > 0) && !(v === 0 && (name === 'warmup' || name === 'handshake-warmup')))
      throw new RangeError(`--${name} must be positive, got ${raw}`);
  return parsed;
}
const number = (name: keyof typeof values) => numbers(name)[0];

const selected = String(values.only).split(',');
for (const name of selected)
  if (!SCENARIOS.some((s) => s.name === name))
    throw new RangeError(`--only: no scenario ${name} (there are ${SCENARIOS.map((s) => s.name).join(', ')})`);
const scenarios = SCENARIOS.filter((s) => selected.includes(s.name));

/**
 * Raises this process's open-file limit to the hard limit, which the workers inherit, since a
 * client process holds a socket per connection. Returns the limit now in force.
 */
function raiseFileLimit(): number {
  const limit = (flag: string) => {
    const out = spawnSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).stdout.trim();
    return out === 'unlimited' ? Infinity : Number(out);
  };
  const [soft, hard] = [limit('-Sn'), limit('-Hn')];
  if (soft < hard) {
    const to = hard === Infinity ? 'unlimited' : hard;
    spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${to}:${to}`]);
  }
  return limit('-Sn');
}
const fdLimit = raiseFileLimit();
let conns = numbers('conns', true);
if (scenarios.some((s) => s === memory || s === concurrency) && conns.some((n) => n + SPARE_FDS > fdLimit)) {
  console.error(`open-file limit ${fdLimit}: --conns capped at ${fdLimit - SPARE_FDS}`);
  conns = [...new Set(conns.map((n) => Math.min(n, fdLimit - SPARE_FDS)))];
}

const settings: Settings = {
  sizeMiB: number('size'),
  size: Math.round(number('size') * MIB),
  runs: number('runs'),
  iterations: number('iterations'),
  warmup: number('warmup'),
  timeoutMs: number('timeout') * 1000,
  conns,
  handshakes: number('handshakes'),
  handshakeConcurrency: numbers('in-flight', true),
  handshakeWarmup: number('handshake-warmup'),
  datagramMs: number('datagram-seconds') * 1000,
  pausedMiB: number('paused-size'),
  pausedMs: number('paused-seconds') * 1000,
  fdLimit,
};
if (values.matrixai !== 'on' && values.matrixai !== 'off')
  throw new RangeError(`--matrixai must be on or off, got ${values.matrixai}`);
if (values.matrixai === 'on') {
  const iterations = number('matrixai-iterations');
  settings.matrixai = {
    sizeMiB: number('matrixai-size'),
    size: Math.round(number('matrixai-size') * MIB),
    iterations,
    warmup: Math.min(settings.warmup, Math.ceil(iterations / 10)),
    handshakes: number('matrixai-handshakes'),
    handshakeWarmup: Math.min(settings.handshakeWarmup, number('matrixai-handshakes')),
  };
}

const nativeUsed = scenarios.some((s) => s.native);
const nativeError = nativeUsed ? buildNativePeer() : 'not needed by the selected scenarios';
if (nativeUsed && nativeError)
  console.error(`native baseline (bench/native) unavailable: ${nativeError}; running the rest without it`);
const matrixaiUsed = settings.matrixai !== undefined && scenarios.some((s) => s.matrixai);
const matrixaiError = matrixaiUsed ? prepareMatrixai() : undefined;
if (matrixaiError) console.error(`@matrixai/quic baseline unavailable: ${matrixaiError}; running the rest without it`);

/** Every run's figures, by figure and contender; and every raw result, by result and contender. */
const figureRuns: Record<string, Record<Kind, number[]>> = {};
const runs: Record<string, Partial<Record<Kind, unknown[]>>> = {};

for (let run = 1; run <= settings.runs; run++) {
  console.error(`run ${run}/${settings.runs}`);
  const shared = new Map<string, Promise<unknown>>();
  const ctx: Context = {
    settings,
    native: !nativeError,
    matrixai: matrixaiUsed && !matrixaiError,
    shared: <T>(key: string, fn: () => Promise<T>) => {
      if (!shared.has(key)) shared.set(key, attempt(fn));
      return shared.get(key) as Promise<T | undefined>;
    },
  };
  // Each scenario runs quichex and its baselines back to back, so that drift in the machine
  // affects all alike.
  for (const s of scenarios) {
    const { figures, raw } = await s.run(ctx);
    for (const [name, byContender] of Object.entries(figures)) {
      figureRuns[name] ??= byKind(() => []);
      for (const [k, v] of Object.entries(byContender)) if (v !== undefined) figureRuns[name][k as Kind].push(v);
    }
    for (const [name, byContender] of Object.entries(raw)) {
      runs[name] ??= {};
      for (const [k, v] of Object.entries(byContender)) (runs[name][k as Kind] ??= []).push(v ?? null);
    }
  }
}

const summary = Object.fromEntries(
  Object.entries(figureRuns).map(([name, byContender]) => [name, byKind((k) => median(byContender[k]))]),
);
const rows: Row[] = scenarios.flatMap((s) => s.rows(summary, settings));
const notes = scenarios.flatMap((s) => s.notes?.(settings) ?? []);
if (nativeUsed && nativeError) notes.push(`native quiche baseline not measured: ${nativeError}`);
if (matrixaiUsed)
  notes.push(
    '@matrixai/quic: its own server and client, each in its own process, the server certificate pinned by a',
    '  verifyCallback (bench/matrixai.ts); bulk on one unidirectional stream, echoes on one bidirectional stream.',
  );
if (matrixaiError) notes.push(`@matrixai/quic baseline not measured (n/a): ${matrixaiError}`);
const cpu = cpus();
const against = `node:dgram, native quiche (bench/native)${matrixaiUsed ? ` and @matrixai/quic ${MATRIXAI_VERSION}` : ''}`;
console.log(`\nquichex vs ${against}, loopback, separate processes; medians of ${settings.runs} run(s)`);
console.log(`${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, node ${process.version}, ${platform()} ${release()}\n`);
printTable(rows);
if (notes.length > 0) console.log(`\n${notes.join('\n')}`);

const results = new URL('./results/', import.meta.url);
mkdirSync(results, { recursive: true });
const file = new URL(`${new Date().toISOString().replace(/[:.]/g, '-')}.json`, results);
const machine = {
  cpus: cpu.length,
  model: cpu[0]?.model,
  node: process.version,
  platform: platform(),
  release: release(),
};
const options = {
  ...settings,
  scenarios: scenarios.map((s) => s.name),
  datagramSize: DATAGRAM_SIZE,
  datagramPayload: DATAGRAM_PAYLOAD,
  echoSize: ECHO_SIZE,
  nativeBuildError: nativeError,
  matrixaiError,
};
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, options, summary, runs }, null, 2));
console.log(`\nall samples: ${fileURLToPath(file)}`);
// Some run failed, or the native peer could not be built.
if (failures() > 0 || (nativeUsed && nativeError)) process.exitCode = 1;
