/**
 * What every scenario of bench/run.ts is: one run at a time, figures by name for each contender,
 * and table rows built from the medians of those figures over the runs.
 */

/**
 * The contenders: quichex and its same-run baselines: raw `node:dgram`, bench/native's
 * quiche-peer, and the peer library @matrixai/quic.
 */
export const KINDS = ['quichex', 'dgram', 'native', 'matrixai'] as const;
/** One contender. */
export type Kind = (typeof KINDS)[number];

/** One run's figures by name: each contender's value (absent: not measured, or the run failed). */
export type Figures = Record<string, Partial<Record<Kind, number>>>;
/** Medians over the runs, by figure name; NaN where nothing was measured. */
export type Summary = Record<string, Record<Kind, number>>;

/** What the command line chose. */
export interface Settings {
  /** Bulk transfer size in MiB, and in bytes. */
  sizeMiB: number;
  size: number;
  runs: number;
  /** Echo round trips measured per run, and unmeasured ones before them. */
  iterations: number;
  warmup: number;
  /** Each run of each scenario is stopped after this long (scaled up for many connections). */
  timeoutMs: number;
  /** Connection counts for the memory and concurrency scenarios. */
  conns: number[];
  /**
   * Connections opened per handshake run, how many at once in each variant, and how many are
   * opened (at the same concurrency) before the timed ones.
   */
  handshakes: number;
  handshakeConcurrency: number[];
  handshakeWarmup: number;
  /** How long the datagram sender sends. */
  datagramMs: number;
  /** What the paused scenario tries to send, and how long it watches a blocked writer. */
  pausedMiB: number;
  pausedMs: number;
  /** The open-file limit the workers inherit. */
  fdLimit: number;
  /**
   * What the @matrixai/quic baseline does instead, being far slower: its bulk size in MiB and
   * bytes, its echo round trips, and its connections (and warm-up connections) per handshake run;
   * absent when turned off.
   */
  matrixai?: {
    sizeMiB: number;
    size: number;
    iterations: number;
    warmup: number;
    handshakes: number;
    handshakeWarmup: number;
  };
}

/** What a scenario gets for one run. */
export interface Context {
  settings: Settings;
  /** Whether bench/native's quiche-peer was built. */
  native: boolean;
  /** Whether @matrixai/quic is installed, loads, and was not turned off. */
  matrixai: boolean;
  /**
   * The result of `fn`, run once per run however many scenarios ask for `key`: a baseline that
   * several scenarios compare against. `undefined` if it failed.
   */
  shared<T>(key: string, fn: () => Promise<T>): Promise<T | undefined>;
}

/** One run's results: the figures, and every raw measurement for the results file. */
export interface RunResult {
  figures: Figures;
  raw: Record<string, Partial<Record<Kind, unknown>>>;
}

/** A table row: the figure's name, its formatted cells, and its target if the issue sets one. */
export interface Row {
  figure: string;
  values: Record<Kind, number>;
  format: (value: number) => string;
  /** Appended to a contender's cell (such as the baseline's loss). */
  extra?: Partial<Record<Kind, string>>;
  /** Whether the row has a @matrixai/quic cell: n/a when it was not measured, rather than '-'. */
  matrixai?: boolean;
  target?: string;
}

/** A scenario, selected on the command line by `name`. */
export interface Scenario {
  name: string;
  /** Whether it runs bench/native's quiche-peer (which then has to be built). */
  native: boolean;
  /** Whether it runs the @matrixai/quic baseline (which then has to be installed). */
  matrixai?: boolean;
  run(ctx: Context): Promise<RunResult>;
  rows(summary: Summary, settings: Settings): Row[];
  /** Lines printed under the table: what the baselines are where it is not obvious. */
  notes?(settings: Settings): string[];
}

/** `f(kind)` for each contender. */
export const byKind = <T>(f: (kind: Kind) => T) => Object.fromEntries(KINDS.map((k) => [k, f(k)])) as Record<Kind, T>;

/** The medians of `figure`; NaN for every contender when it is missing. */
export const valuesOf = (summary: Summary, figure: string): Record<Kind, number> =>
  summary[figure] ?? byKind(() => NaN);

const finite = (f: (v: number) => string) => (v: number) => (Number.isFinite(v) ? f(v) : 'n/a');
/** Formats for the cells. */
export const fmt = {
  mbit: finite((v) => `${v.toFixed(0)} Mbit/s`),
  us: finite((ms) => `${(ms * 1000).toFixed(0)} µs`),
  ms: finite((ms) => `${ms.toFixed(2)} ms`),
  perSec: (unit: string) => finite((v) => `${v.toFixed(0)} ${unit}/s`),
  kib: finite((bytes) => `${(bytes / 1024).toFixed(1)} KiB`),
  mib: finite((bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`),
  percent: finite((v) => `${(100 * v).toFixed(1)}%`),
};

/** A target cell for a figure that must be at least `goal`: met, or short by how much. */
export function atLeast(value: number, goal: number, label: string): string {
  if (!Number.isFinite(value)) return `${label}: not measured`;
  return value >= goal ? `${label}: met` : `${label}: missed by ${((1 - value / goal) * 100).toFixed(0)}%`;
}

/** A target cell for a figure that must be at most `goal`: met, or over by what factor. */
export function atMost(value: number, goal: number, label: string): string {
  if (!Number.isFinite(value)) return `${label}: not measured`;
  return value <= goal ? `${label}: met` : `${label}: missed, ${(value / goal).toFixed(2)}× the target`;
}

/** Milliseconds between two stamps as a rate of `amount` per second. */
export const perSecond = (amount: number, ms: number) => amount / (ms / 1000);
