/**
 * First quichex benchmark: bulk throughput and echo round trips, each beside a raw `node:dgram`
 * baseline measured in the same run, server and client in separate processes on loopback.
 *
 *   npm run bench -- [--size <MiB>] [--runs <n>] [--iterations <n>] [--warmup <n>] [--timeout <s>]
 *
 * Prints medians over the runs as a table (figure, baseline, ratio) and writes every sample to
 * bench/results/<date>.json. Each run of each scenario is killed after --timeout seconds.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATAGRAM_SIZE, ECHO_SIZE, median, percentile, type ControlMessage, type WorkerMessage } from './common.js';

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

/** A worker script in its own process, talking over IPC. */
class WorkerProcess {
  readonly #name: string;
  readonly #child: ChildProcess;
  readonly #inbox: WorkerMessage[] = [];
  #waiter: { type: string; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void } | undefined;
  #exit: Error | undefined;

  constructor(script: string, args: Args) {
    this.#name = `${script} ${args.role ?? args.mode ?? ''}`.trim();
    const argv = Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)]);
    // fork() passes on tsx's loader (our execArgv), so the worker can be TypeScript.
    this.#child = fork(fileURLToPath(new URL(script, import.meta.url)), argv, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (m: WorkerMessage) => {
      if (this.#waiter?.type === m.type) this.#waiter.resolve(m);
      else this.#inbox.push(m);
    });
    this.#child.on('exit', (code, signal) => {
      this.#exit = new Error(`${this.#name} exited (${signal ?? `code ${code}`})`);
      this.#waiter?.reject(this.#exit);
    });
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

  send(message: ControlMessage): void {
    if (this.#child.connected) this.#child.send(message);
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

async function quicBulk(): Promise<Bulk> {
  return scenario('quichex bulk', async (start) => {
    const server = start('quic-server.ts', {});
    const { port, hash = '' } = await server.next('ready');
    const client = start('quic-client.ts', { mode: 'bulk', port, hash, size });
    const [sent, received] = await Promise.all([client.next('sent'), server.next('received')]);
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

async function echo(server: string, serverArgs: Args, client: string, clientArgs: Args): Promise<Echo> {
  return scenario(`${server} echo`, async (start) => {
    const s = start(server, serverArgs);
    const { port, hash = '' } = await s.next('ready');
    const { iterations, warmup } = options;
    const { samples } = await start(client, { ...clientArgs, port, hash, iterations, warmup }).next('samples');
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
  });
}

/** Runs `fn`, logging and returning `undefined` when it fails, so one bad run does not stop the rest. */
async function attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    console.error(`  failed: ${(e as Error).message}`);
    return undefined;
  }
}

const runs = { quicBulk: [] as Bulk[], dgramBulk: [] as Bulk[], quicEcho: [] as Echo[], dgramEcho: [] as Echo[] };
const mbit = (b: Bulk) => (b.bytesPerSec * 8) / 1e6;
const us = (ms: number) => (Number.isFinite(ms) ? `${(ms * 1000).toFixed(0)} µs` : 'n/a');

for (let run = 1; run <= options.runs; run++) {
  console.error(`run ${run}/${options.runs}`);
  // quichex and its baseline back to back, so that drift in the machine affects both alike.
  const qb = await attempt(quicBulk);
  const db = await attempt(dgramBulk);
  if (qb) runs.quicBulk.push(qb);
  if (db) runs.dgramBulk.push(db);
  console.error(
    `  bulk: quichex ${qb ? mbit(qb).toFixed(0) : '-'} Mbit/s, dgram ${db ? mbit(db).toFixed(0) : '-'} Mbit/s (loss ${db ? (100 * (db.loss ?? 0)).toFixed(1) : '-'}%)`,
  );
  const qe = await attempt(() => echo('quic-server.ts', {}, 'quic-client.ts', { mode: 'echo' }));
  const de = await attempt(() => echo('dgram-peer.ts', { role: 'echo' }, 'dgram-peer.ts', { role: 'ping' }));
  if (qe) runs.quicEcho.push(qe);
  if (de) runs.dgramEcho.push(de);
  console.error(
    `  echo p50/p99: quichex ${qe ? `${us(qe.p50)} / ${us(qe.p99)}` : '-'}, dgram ${de ? `${us(de.p50)} / ${us(de.p99)}` : '-'}`,
  );
}

const summary = {
  bulkMbitPerSec: { quichex: median(runs.quicBulk.map(mbit)), dgram: median(runs.dgramBulk.map(mbit)) },
  bulkMiBPerSec: {
    quichex: median(runs.quicBulk.map((b) => b.bytesPerSec / MIB)),
    dgram: median(runs.dgramBulk.map((b) => b.bytesPerSec / MIB)),
  },
  dgramLoss: median(runs.dgramBulk.map((b) => b.loss ?? 0)),
  echoP50Ms: { quichex: median(runs.quicEcho.map((e) => e.p50)), dgram: median(runs.dgramEcho.map((e) => e.p50)) },
  echoP99Ms: { quichex: median(runs.quicEcho.map((e) => e.p99)), dgram: median(runs.dgramEcho.map((e) => e.p99)) },
};

const { bulkMbitPerSec: t, bulkMiBPerSec: m, echoP50Ms: p50, echoP99Ms: p99 } = summary;
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');
const rate = (mb: number, mib: number) =>
  Number.isFinite(mb) ? `${mb.toFixed(0)} Mbit/s (${mib.toFixed(1)} MiB/s)` : 'n/a';
const lost = Number.isFinite(t.dgram) ? `, ${(100 * summary.dgramLoss).toFixed(1)}% lost` : '';
const rows = [
  ['figure', 'quichex', 'node:dgram baseline', 'ratio'],
  [
    `bulk, ${options.sizeMiB} MiB one stream (higher is better)`,
    rate(t.quichex, m.quichex),
    rate(t.dgram, m.dgram) + lost,
    ratio(t.quichex, t.dgram),
  ],
  [
    `echo ${ECHO_SIZE} B round trip p50 (lower is better)`,
    us(p50.quichex),
    us(p50.dgram),
    ratio(p50.quichex, p50.dgram),
  ],
  [
    `echo ${ECHO_SIZE} B round trip p99 (lower is better)`,
    us(p99.quichex),
    us(p99.dgram),
    ratio(p99.quichex, p99.dgram),
  ],
];
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
const cpu = cpus();
console.log(`\nquichex vs node:dgram, loopback, separate processes; medians of ${options.runs} run(s)`);
console.log(`${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, node ${process.version}, ${platform()} ${release()}\n`);
for (const r of rows)
  console.log(
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd(),
  );

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
const settings = { ...options, datagramSize: DATAGRAM_SIZE, echoSize: ECHO_SIZE };
writeFileSync(
  file,
  JSON.stringify({ date: new Date().toISOString(), machine, options: settings, summary, runs }, null, 2),
);
console.log(`\nall samples: ${fileURLToPath(file)}`);
if (Object.values(runs).some((r) => r.length < options.runs)) process.exitCode = 1; // Some run failed.
