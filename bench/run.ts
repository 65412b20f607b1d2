/**
 * The quichex benchmark: bulk throughput and echo round trips, each beside two baselines measured
 * in the same run: raw `node:dgram` (what Node's UDP sockets carry with no protocol at all), and
 * the native ceiling, bench/native's quiche-peer, which plays the same scenarios in plain Rust over
 * the same quiche and transport settings. Servers and clients run in separate processes on
 * loopback.
 *
 *   npm run bench -- [--size <MiB>] [--runs <n>] [--iterations <n>] [--warmup <n>] [--timeout <s>]
 *
 * Builds quiche-peer with cargo first when it is missing or stale; if that fails, says so and runs
 * the rest without it. Prints medians over the runs as a table (figure, baselines, ratios) and
 * writes every sample to bench/results/<date>.json. Each run of each scenario is killed after
 * --timeout seconds. Exits non-zero when any run (or the native build) failed.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATAGRAM_SIZE, ECHO_SIZE, median, percentile, type ControlMessage, type WorkerMessage } from './common.js';
import { buildNativePeer, NATIVE_PEER } from './native-peer.js';

const MIB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
    iterations: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '200' },
    timeout: { type: 'string', default: '60' },
  },
});
for (const [name, raw] of Object.entries(values)) {
  const v = Number(raw);
  if (!(v > 0) && !(name === 'warmup' && v === 0))
    throw new RangeError(`--${name} must be a positive number, got ${raw}`);
}
const options = {
  sizeMiB: Number(values.size),
  runs: Number(values.runs),
  iterations: Number(values.iterations),
  warmup: Number(values.warmup),
  timeoutMs: Number(values.timeout) * 1000,
};
const size = Math.round(options.sizeMiB * MIB);

type Message<T extends WorkerMessage['type']> = Extract<WorkerMessage, { type: T }>;
/** A worker's command-line options, as `--name value`. */
type Args = Record<string, string | number>;

/**
 * A worker in its own process: a script of bench/ talking over IPC, or (`script` = NATIVE_PEER)
 * the native peer, which prints the same messages as JSON lines and stops when its stdin closes.
 */
class WorkerProcess {
  readonly #name: string;
  readonly #native: boolean;
  readonly #child: ChildProcess;
  readonly #inbox: WorkerMessage[] = [];
  #waiter: { type: string; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void } | undefined;
  #exit: Error | undefined;

  constructor(script: string, args: Args) {
    this.#native = script === NATIVE_PEER;
    this.#name = `${this.#native ? 'quiche-peer' : script} ${args.role ?? args.mode ?? ''}`.trim();
    const argv = Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)]);
    if (this.#native) {
      this.#child = spawn(NATIVE_PEER, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
      this.#child.stdin?.on('error', () => {}); // EPIPE when stopping a peer that has just exited
      createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#receive(line));
    } else {
      // fork() passes on tsx's loader (our execArgv), so the worker can be TypeScript.
      this.#child = fork(fileURLToPath(new URL(script, import.meta.url)), argv, {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      this.#child.on('message', (m: WorkerMessage) => this.#deliver(m));
    }
    // A native peer's last line can still be in its stdout pipe at 'exit'; 'close' comes after it.
    this.#child.on(this.#native ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.#exit = new Error(`${this.#name} exited (${signal ?? `code ${code}`})`);
      this.#waiter?.reject(this.#exit);
    });
  }

  #receive(line: string): void {
    let message: WorkerMessage;
    try {
      message = JSON.parse(line) as WorkerMessage;
    } catch {
      console.error(`  ${this.#name}: ${line}`);
      return;
    }
    this.#deliver(message);
  }

  #deliver(m: WorkerMessage): void {
    if (this.#waiter?.type === m.type) this.#waiter.resolve(m);
    else this.#inbox.push(m);
  }

  /** The next message of `type` from the worker. */
  next<T extends WorkerMessage['type']>(type: T): Promise<Message<T>> {
    const i = this.#inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0] as Message<T>);
    if (this.#exit) return Promise.reject(this.#exit);
    return new Promise((resolve, reject) => {
      this.#waiter = { type, resolve: (m) => ((this.#waiter = undefined), resolve(m as Message<T>)), reject };
    });
  }

  /** Sends `message`; a native peer understands only `stop`, as the end of its stdin. */
  send(message: ControlMessage): void {
    if (this.#native) {
      if (message.type === 'stop') this.#child.stdin?.end();
    } else if (this.#child.connected) this.#child.send(message);
  }

  /** Asks the worker to close its sockets and exit; kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs `body` with fresh workers, stopping them afterwards and failing after the timeout. */
async function scenario<T>(
  name: string,
  body: (start: (script: string, args: Args) => WorkerProcess) => Promise<T>,
): Promise<T> {
  const workers: WorkerProcess[] = [];
  const start = (script: string, args: Args) => {
    const w = new WorkerProcess(script, args);
    workers.push(w);
    return w;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} did not finish within ${options.timeoutMs / 1000} s`)),
      options.timeoutMs,
    );
  });
  try {
    return await Promise.race([body(start), timeout]);
  } finally {
    clearTimeout(timer);
    // Clients first, so that a server sees its sessions close cleanly.
    for (const w of workers.reverse()) await w.stop();
  }
}

interface Bulk {
  bytes: number;
  ms: number;
  bytesPerSec: number;
  loss?: number;
}

function bulkOf(sent: Message<'sent'>, received: Message<'received'>): Bulk {
  const ms = received.last - sent.start;
  return { bytes: received.bytes, ms, bytesPerSec: received.bytes / (ms / 1000) };
}

/** One stream of `size` bytes from `client` to `server`: quichex, or the native peer. */
async function streamBulk(name: string, server: string, serverArgs: Args, client: string, clientArgs: Args) {
  return scenario(name, async (start) => {
    const s = start(server, serverArgs);
    const { port, hash = '' } = await s.next('ready');
    const c = start(client, { ...clientArgs, port, hash, size });
    const [sent, received] = await Promise.all([c.next('sent'), s.next('received')]);
    if (received.bytes !== size) throw new Error(`the server read ${received.bytes} of ${size} bytes`);
    return bulkOf(sent, received);
  });
}

async function dgramBulk(): Promise<Bulk> {
  return scenario('dgram bulk', async (start) => {
    const sink = start('dgram-peer.ts', { role: 'sink' });
    const { port } = await sink.next('ready');
    const sent = await start('dgram-peer.ts', { role: 'blast', port, size }).next('sent');
    await sleep(300); // Whatever is still in the loopback queue arrives well within this.
    sink.send({ type: 'report' });
    const received = await sink.next('received');
    return { ...bulkOf(sent, received), loss: 1 - received.packets / (sent.packets ?? received.packets) };
  });
}

interface Echo {
  p50: number;
  p99: number;
  samples: number[];
}

async function echo(name: string, server: string, serverArgs: Args, client: string, clientArgs: Args) {
  return scenario(name, async (start): Promise<Echo> => {
    const s = start(server, serverArgs);
    const { port, hash = '' } = await s.next('ready');
    const { iterations, warmup } = options;
    const { samples } = await start(client, { ...clientArgs, port, hash, iterations, warmup }).next('samples');
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
  });
}

/**
 * Runs `fn`, logging and returning `undefined` when it fails, so one bad run does not stop the
 * rest; `undefined` at once when there is no `fn` (the native peer was not built).
 */
async function attempt<T>(fn: (() => Promise<T>) | undefined): Promise<T | undefined> {
  if (!fn) return undefined;
  try {
    return await fn();
  } catch (e) {
    console.error(`  failed: ${(e as Error).message}`);
    return undefined;
  }
}

/** The three contenders: quichex and its two same-run baselines. */
const KINDS = ['quichex', 'dgram', 'native'] as const;
type Kind = (typeof KINDS)[number];
const byKind = <T>(f: (kind: Kind) => T) => Object.fromEntries(KINDS.map((k) => [k, f(k)])) as Record<Kind, T>;

const nativeError = buildNativePeer();
if (nativeError)
  console.error(`native baseline (bench/native) unavailable: ${nativeError}; running the rest without it`);

/** Each contender's server and client for each scenario; the native pair only if it was built. */
const bulks: Record<Kind, (() => Promise<Bulk>) | undefined> = {
  quichex: () => streamBulk('quichex bulk', 'quic-server.ts', {}, 'quic-client.ts', { mode: 'bulk' }),
  dgram: dgramBulk,
  native: nativeError
    ? undefined
    : () => streamBulk('native bulk', NATIVE_PEER, { role: 'server' }, NATIVE_PEER, { role: 'bulk' }),
};
const echoes: Record<Kind, (() => Promise<Echo>) | undefined> = {
  quichex: () => echo('quichex echo', 'quic-server.ts', {}, 'quic-client.ts', { mode: 'echo' }),
  dgram: () => echo('dgram echo', 'dgram-peer.ts', { role: 'echo' }, 'dgram-peer.ts', { role: 'ping' }),
  native: nativeError
    ? undefined
    : () => echo('native echo', NATIVE_PEER, { role: 'server' }, NATIVE_PEER, { role: 'echo' }),
};

const runs = { bulk: byKind((): Bulk[] => []), echo: byKind((): Echo[] => []) };
const mbit = (b: Bulk) => (b.bytesPerSec * 8) / 1e6;
const us = (ms: number) => (Number.isFinite(ms) ? `${(ms * 1000).toFixed(0)} µs` : 'n/a');

for (let run = 1; run <= options.runs; run++) {
  console.error(`run ${run}/${options.runs}`);
  // quichex and its baselines back to back, so that drift in the machine affects all alike.
  const bulk = byKind(() => undefined as Bulk | undefined);
  for (const k of KINDS) {
    bulk[k] = await attempt(bulks[k]);
    if (bulk[k]) runs.bulk[k].push(bulk[k]);
  }
  const loss = bulk.dgram ? ` (loss ${(100 * (bulk.dgram.loss ?? 0)).toFixed(1)}%)` : '';
  const rateOf = (b?: Bulk) => (b ? `${mbit(b).toFixed(0)} Mbit/s` : '-');
  console.error(
    `  bulk: quichex ${rateOf(bulk.quichex)}, dgram ${rateOf(bulk.dgram)}${loss}, native ${rateOf(bulk.native)}`,
  );
  const rtt = byKind(() => undefined as Echo | undefined);
  for (const k of KINDS) {
    rtt[k] = await attempt(echoes[k]);
    if (rtt[k]) runs.echo[k].push(rtt[k]);
  }
  const rttOf = (e?: Echo) => (e ? `${us(e.p50)} / ${us(e.p99)}` : '-');
  console.error(
    `  echo p50/p99: quichex ${rttOf(rtt.quichex)}, dgram ${rttOf(rtt.dgram)}, native ${rttOf(rtt.native)}`,
  );
}

const summary = {
  bulkMbitPerSec: byKind((k) => median(runs.bulk[k].map(mbit))),
  bulkMiBPerSec: byKind((k) => median(runs.bulk[k].map((b) => b.bytesPerSec / MIB))),
  dgramLoss: median(runs.bulk.dgram.map((b) => b.loss ?? 0)),
  echoP50Ms: byKind((k) => median(runs.echo[k].map((e) => e.p50))),
  echoP99Ms: byKind((k) => median(runs.echo[k].map((e) => e.p99))),
};

const { bulkMbitPerSec: t, echoP50Ms: p50, echoP99Ms: p99 } = summary;
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');
// MiB/s stays in the results file (summary.bulkMiBPerSec), to keep the table narrow.
const rate = (k: Kind) => (Number.isFinite(t[k]) ? `${t[k].toFixed(0)} Mbit/s` : 'n/a');
const lost = Number.isFinite(t.dgram) ? `, ${(100 * summary.dgramLoss).toFixed(1)}% lost` : '';
/** A row: the figure, then quichex, each baseline and quichex's ratio to it. */
const row = (figure: string, cell: (k: Kind) => string, value: Record<Kind, number>, note = '') => [
  figure,
  cell('quichex'),
  cell('dgram') + note,
  ratio(value.quichex, value.dgram),
  cell('native'),
  ratio(value.quichex, value.native),
];
const rows = [
  ['figure', 'quichex', 'node:dgram', 'quichex/dgram', 'native quiche', 'quichex/native'],
  row(`bulk, ${options.sizeMiB} MiB one stream (higher is better)`, rate, t, lost),
  row(`echo ${ECHO_SIZE} B round trip p50 (lower is better)`, (k) => us(p50[k]), p50),
  row(`echo ${ECHO_SIZE} B round trip p99 (lower is better)`, (k) => us(p99[k]), p99),
];
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
const cpu = cpus();
console.log(
  `\nquichex vs node:dgram and vs native quiche (bench/native), loopback, separate processes; medians of ${options.runs} run(s)`,
);
console.log(`${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, node ${process.version}, ${platform()} ${release()}\n`);
for (const r of rows)
  console.log(
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd(),
  );
if (nativeError) console.log(`\nnative quiche baseline not measured: ${nativeError}`);

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
const settings = { ...options, datagramSize: DATAGRAM_SIZE, echoSize: ECHO_SIZE, nativeBuildError: nativeError };
writeFileSync(
  file,
  JSON.stringify({ date: new Date().toISOString(), machine, options: settings, summary, runs }, null, 2),
);
console.log(`\nall samples: ${fileURLToPath(file)}`);
// Some run failed, or the native peer could not be built.
if ([...Object.values(runs.bulk), ...Object.values(runs.echo)].some((r) => r.length < options.runs))
  process.exitCode = 1;
