/**
 * How bench/run.ts drives its workers: each in its own process, spoken to over IPC (or, for the
 * native peer, JSON lines on stdout and end of stdin), every scenario bounded by a timeout after
 * which its workers are killed.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ControlMessage, WorkerMessage } from './common.js';
import { NATIVE_PEER } from './native-peer.js';

/** The message of `type` a worker sends. */
export type Message<T extends WorkerMessage['type']> = Extract<WorkerMessage, { type: T }>;
/** A worker's command-line options, as `--name value`. */
export type Args = Record<string, string | number>;

/**
 * A worker in its own process: a script of bench/ talking over IPC, or (`script` = NATIVE_PEER)
 * the native peer, which prints the same messages as JSON lines and stops when its stdin closes.
 * Node workers run with --expose-gc, so that they can measure their memory after collection.
 */
export class WorkerProcess {
  readonly #name: string;
  readonly #native: boolean;
  readonly #child: ChildProcess;
  readonly #inbox: WorkerMessage[] = [];
  /** Callers of `next` waiting for a message, each for one of its type. */
  readonly #waiters: { type: string; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void }[] = [];
  #exit: Error | undefined;

  /** With `cpu`, the process (every thread of it) runs on that CPU only. */
  constructor(script: string, args: Args, cpu?: number) {
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
        execArgv: [...process.execArgv, '--expose-gc'],
      });
      this.#child.on('message', (m: WorkerMessage) => this.#deliver(m));
    }
    // Pinned before it has started up: threads made later inherit the main thread's CPU.
    if (cpu !== undefined) pin(this.#child.pid, cpu);
    // A native peer's last line can still be in its stdout pipe at 'exit'; 'close' comes after it.
    this.#child.on(this.#native ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.#exit = new Error(`${this.#name} exited (${signal ?? `code ${code}`})`);
      for (const w of this.#waiters.splice(0)) w.reject(this.#exit);
    });
  }

  /** The process id (for sampling its RSS). */
  get pid(): number | undefined {
    return this.#child.pid;
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
    const i = this.#waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(m);
    else this.#inbox.push(m);
  }

  /** The next message of `type` from the worker. */
  next<T extends WorkerMessage['type']>(type: T): Promise<Message<T>> {
    const i = this.#inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0] as Message<T>);
    if (this.#exit) return Promise.reject(this.#exit);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ type, resolve: (m) => resolve(m as Message<T>), reject });
    });
  }

  /** Sends `message`; a native peer understands only `stop`, as the end of its stdin. */
  send(message: ControlMessage): void {
    if (this.#native) {
      if (message.type === 'stop') this.#child.stdin?.end();
    } else if (this.#child.connected) this.#child.send(message);
  }

  /** Asks for the worker's memory after garbage collection. */
  measure(): Promise<Message<'memory'>> {
    this.send({ type: 'measure' });
    return this.next('memory');
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

/** Starts a worker (on CPU `cpu` alone, if given) that the scenario stops when it ends. */
export type Start = (script: string, args: Args, cpu?: number) => WorkerProcess;

/** Whether processes can be pinned to a CPU here: `taskset` (util-linux) and two CPUs. */
export function canPin(): boolean {
  if (availableParallelism() < 2) return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pin(pid: number | undefined, cpu: number): void {
  if (pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/**
 * Runs `body` with fresh workers, stopping them afterwards (clients first, in reverse order of
 * starting) and failing after `timeoutMs`.
 */
export async function scenario<T>(name: string, timeoutMs: number, body: (start: Start) => Promise<T>): Promise<T> {
  const workers: WorkerProcess[] = [];
  const start = (script: string, args: Args, cpu?: number) => {
    const w = new WorkerProcess(script, args, cpu);
    workers.push(w);
    return w;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([body(start), timeout]);
  } finally {
    clearTimeout(timer);
    // Clients first, so that a server sees its sessions close cleanly.
    for (const w of workers.reverse()) await w.stop();
  }
}

let failed = 0;

/**
 * Runs `fn`, logging and returning `undefined` when it fails, so one bad run does not stop the
 * rest; `undefined` at once when there is no `fn` (the native peer was not built).
 */
export async function attempt<T>(fn: (() => Promise<T>) | undefined): Promise<T | undefined> {
  if (!fn) return undefined;
  try {
    return await fn();
  } catch (e) {
    failed++;
    console.error(`  failed: ${(e as Error).message}`);
    return undefined;
  }
}

/** How many `attempt`s have failed. */
export const failures = () => failed;

/** The resident set size of process `pid` in bytes, from /proc (Linux); NaN if it is gone. */
export function rssOf(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? NaN : Number(kib) * 1024;
  } catch {
    return NaN;
  }
}
