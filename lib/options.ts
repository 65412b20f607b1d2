/**
 * Option validation and defaults. Every option is checked here, once: a wrong type throws a
 * `TypeError`, a value out of range a `RangeError`, each naming the option.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import type { BindingConfig } from './native.js';

/** Options shared by clients and servers (camelCase of quiche's setters). */
export interface TransportOptions {
  /** ALPN protocols in preference order. Default `['quichex']`. */
  protocols?: string[];
  /** Close the connection after this many milliseconds without packets. Default 30000. */
  maxIdleTimeout?: number;
  /** Give up a handshake after this many milliseconds. Default 10000. */
  handshakeTimeout?: number;
  /** Connection flow-control window, bytes. Default 16 MiB. */
  initialMaxData?: number;
  /** Window of streams we open, bytes. Default 1 MiB. */
  initialMaxStreamDataBidiLocal?: number;
  /** Window of bidirectional streams the peer opens, bytes. Default 1 MiB. */
  initialMaxStreamDataBidiRemote?: number;
  /** Window of unidirectional streams the peer opens, bytes. Default 1 MiB. */
  initialMaxStreamDataUni?: number;
  /** Bidirectional streams the peer may open at once. Default 100. */
  initialMaxStreamsBidi?: number;
  /** Unidirectional streams the peer may open at once. Default 100. */
  initialMaxStreamsUni?: number;
  /** Ceiling of the auto-tuned connection window, bytes (at least 1). Default 24 MiB. */
  maxConnectionWindow?: number;
  /** Ceiling of the auto-tuned stream window, bytes (at least 1). Default 16 MiB. */
  maxStreamWindow?: number;
  /** `'cubic'` (default), `'reno'`, `'bbr2'`, or the W3C hints `'default'`, `'throughput'`, `'low-latency'`. */
  congestionControl?: 'cubic' | 'reno' | 'bbr2' | 'default' | 'throughput' | 'low-latency';
  /** Largest UDP payload sent or received, bytes (1200–65527). Default 1350. */
  maxUdpPayloadSize?: number;
  /** Ask the peer not to migrate. Default false. */
  disableActiveMigration?: boolean;
  /** Send GREASE values (RFC 9287). Default true. */
  grease?: boolean;
  /**
   * Space packets as the congestion controller's pacer says (after a first burst) rather than
   * sending all the window allows at once. Default true. Only BBR2 (`'bbr2'`, `'low-latency'`)
   * paces; quiche's CUBIC and Reno send as their window allows.
   */
  pacing?: boolean;
  /** The round-trip time assumed before the first measurement, milliseconds. Default 100. */
  initialRtt?: number;
  /** Send a PING this often (milliseconds) once established, so that an idle session stays open. Default 0 (off). */
  keepAliveInterval?: number;
  /** QUIC DATAGRAMs (RFC 9221): `true` (default), `false`, or their queue limits and ages. */
  datagrams?: boolean | DatagramOptions;
  /**
   * Append TLS secrets to this file in the SSLKEYLOGFILE format (for Wireshark). Without the
   * option the `SSLKEYLOGFILE` environment variable is used when set; `false` turns both off.
   */
  keylog?: string | false;
  /** Write a qlog file (`<trace id>-<client|server>.sqlog`) per connection into this existing directory. */
  qlogDir?: string;
}

/** Initial values of the `transport.datagrams` attributes. */
export interface DatagramOptions {
  /** Received datagrams kept for the reader; more drop the oldest. Default 1024. */
  incomingMaxBufferedDatagrams?: number;
  /** Datagrams queued to send before `write()` waits. Default 1024. */
  outgoingMaxBufferedDatagrams?: number;
  /** Received datagrams older than this (milliseconds) are dropped unread. Default `null` (no limit). */
  incomingMaxAge?: number | null;
  /** Queued datagrams older than this (milliseconds) are dropped unsent. Default `null` (no limit). */
  outgoingMaxAge?: number | null;
}

/** Datagram settings, resolved. `enabled: false` means we neither offer nor accept them. */
export interface ResolvedDatagrams {
  enabled: boolean;
  incomingMaxBufferedDatagrams: number;
  outgoingMaxBufferedDatagrams: number;
  incomingMaxAge: number | null;
  outgoingMaxAge: number | null;
}

/** An acceptable server certificate hash, as in W3C WebTransport. */
export interface CertificateHash {
  algorithm: 'sha-256';
  value: ArrayBufferView | ArrayBuffer;
}

/** PEM text, a Buffer of PEM, or a path to a PEM file. */
export type PemSource = string | Uint8Array;

/** Options of `new QuicTransport(url, options)`. */
export interface QuicTransportOptions extends TransportOptions {
  /** Accept exactly the certificates with these SHA-256 hashes (≤ 14 days validity). */
  serverCertificateHashes?: CertificateHash[];
  /** Trust roots, replacing the system store. */
  ca?: PemSource | PemSource[];
  /** The name to send (SNI) and verify. Default: the URL's host when it is a name. */
  serverName?: string;
  /** Accept any certificate. Only for tests and debugging: anyone on the path can intercept. */
  dangerouslyAcceptAnyCertificate?: boolean;
  /** Aborting it closes the session (or stops the connection attempt) with `ERR_QUIC_ABORTED`. */
  signal?: AbortSignal;
}

/** Options of `new QuicServer(options)`. */
export interface QuicServerOptions extends TransportOptions {
  /** Address to bind. Default `'0.0.0.0'`. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /** Certificate chain. Without `cert`/`key` a self-signed ECDSA P-256 certificate valid 14 days is generated. */
  cert?: PemSource;
  /** Private key for `cert`. */
  key?: PemSource;
  /** Most connections at once; more are refused with CONNECTION_REFUSED. Default 10000. */
  maxConnections?: number;
  /** Validate client addresses with a stateless Retry before keeping state. Default false. */
  retry?: boolean;
  /**
   * The secret (at least 16 bytes, kept private) that this server's stateless reset tokens are
   * derived from. Give every run of a server the same key, and a client of a run that crashed
   * or restarted learns that its connection is gone from the first packet it sends, instead of
   * at its idle timeout. Default: a random key per server.
   */
  statelessResetKey?: Uint8Array;
}

export const DEFAULT_PROTOCOLS = ['quichex'];
const MIB = 1024 * 1024;
/**
 * Largest stream limit accepted. QUIC allows 2^60, but a peer may open the highest id first and
 * the binding keeps one entry per stream id skipped over, so the limit bounds that memory.
 */
const MAX_STREAMS = 65_536;

type Kind = 'client' | 'server';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function integer(o: Record<string, unknown>, name: string, def: number, min: number, max: number): number {
  const v = o[name];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`options.${name} must be an integer, got ${describe(v)}`);
  }
  if (v < min || v > max) throw new RangeError(`options.${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function bool(o: Record<string, unknown>, name: string, def: boolean): boolean {
  const v = o[name];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new TypeError(`options.${name} must be a boolean, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 40))}`;
  return typeof v === 'object' ? `an instance of ${v.constructor?.name ?? 'Object'}` : `${typeof v} ${String(v)}`;
}

function protocols(o: Record<string, unknown>): string[] {
  const v = o.protocols;
  if (v === undefined) return DEFAULT_PROTOCOLS;
  if (!Array.isArray(v) || v.length === 0)
    throw new TypeError('options.protocols must be a non-empty array of strings');
  for (const p of v) {
    if (typeof p !== 'string') throw new TypeError(`options.protocols must contain only strings, got ${describe(p)}`);
    const len = Buffer.byteLength(p);
    if (len === 0 || len > 255)
      throw new RangeError(`options.protocols entries must be 1–255 bytes, got ${JSON.stringify(p)}`);
  }
  return [...v] as string[];
}

const CONGESTION: Record<string, string> = {
  cubic: 'cubic',
  reno: 'reno',
  bbr2: 'bbr2',
  default: 'cubic',
  throughput: 'cubic',
  'low-latency': 'bbr2',
};

function congestionControl(o: Record<string, unknown>): string {
  const v = o.congestionControl;
  if (v === undefined) return 'cubic';
  if (typeof v !== 'string') throw new TypeError(`options.congestionControl must be a string, got ${describe(v)}`);
  // Own keys only: 'toString' and its kind are no algorithm.
  const algo = Object.hasOwn(CONGESTION, v) ? CONGESTION[v] : undefined;
  if (!algo)
    throw new RangeError(
      `options.congestionControl must be one of ${Object.keys(CONGESTION).join(', ')}, got ${JSON.stringify(v)}`,
    );
  return algo;
}

/** A queue limit: a positive integer. */
export function queueLimit(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new TypeError(`${name} must be an integer, got ${describe(v)}`);
  if (v < 1 || v > 2 ** 31 - 1) throw new RangeError(`${name} must be between 1 and ${2 ** 31 - 1}, got ${v}`);
  return v;
}

/** A maximum age in milliseconds: a positive number, or `null` for none. */
export function maxAge(v: unknown, name: string): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || Number.isNaN(v))
    throw new TypeError(`${name} must be a number or null, got ${describe(v)}`);
  if (v <= 0) throw new RangeError(`${name} must be greater than 0, got ${v}`);
  return v === Infinity ? null : v;
}

function datagrams(o: Record<string, unknown>): ResolvedDatagrams {
  const v = o.datagrams;
  const d: ResolvedDatagrams = {
    enabled: v !== false,
    incomingMaxBufferedDatagrams: 1024,
    outgoingMaxBufferedDatagrams: 1024,
    incomingMaxAge: null,
    outgoingMaxAge: null,
  };
  if (v === undefined || typeof v === 'boolean') return d;
  if (!isObject(v)) throw new TypeError(`options.datagrams must be a boolean or an object, got ${describe(v)}`);
  for (const name of ['incomingMaxBufferedDatagrams', 'outgoingMaxBufferedDatagrams'] as const) {
    if (v[name] !== undefined) d[name] = queueLimit(v[name], `options.datagrams.${name}`);
  }
  for (const name of ['incomingMaxAge', 'outgoingMaxAge'] as const) {
    if (v[name] !== undefined) d[name] = maxAge(v[name], `options.datagrams.${name}`);
  }
  return d;
}

function keylog(o: Record<string, unknown>): string | undefined {
  const v = o.keylog;
  if (v === false) return undefined;
  if (v === undefined) return process.env.SSLKEYLOGFILE || undefined;
  if (typeof v !== 'string' || v === '')
    throw new TypeError(`options.keylog must be a file path or false, got ${describe(v)}`);
  return v;
}

function qlogDir(o: Record<string, unknown>): string | undefined {
  const v = o.qlogDir;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '')
    throw new TypeError(`options.qlogDir must be a directory path, got ${describe(v)}`);
  let dir = false;
  try {
    dir = statSync(v).isDirectory();
  } catch {
    // Reported below.
  }
  if (!dir) throw new TypeError(`options.qlogDir must be an existing directory, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads PEM from text, bytes or a file path. */
export function readPem(v: unknown, name: string): string {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  if (typeof v !== 'string')
    throw new TypeError(`options.${name} must be PEM text, a Buffer or a file path, got ${describe(v)}`);
  if (v.includes('-----BEGIN')) return v;
  try {
    return readFileSync(v, 'utf8');
  } catch (cause) {
    throw new TypeError(`options.${name}: cannot read PEM file ${JSON.stringify(v)}`, { cause });
  }
}

/** What both sides resolve to. `handshakeTimeout` and datagram queues stay in JS; the rest goes native. */
export interface Resolved {
  binding: BindingConfig;
  handshakeTimeout: number;
  datagrams: ResolvedDatagrams;
}

function transport(o: Record<string, unknown>, kind: Kind): Resolved {
  const windowMax = 2 ** 53 - 1;
  const maxIdleTimeout = integer(o, 'maxIdleTimeout', 30_000, 0, 2 ** 31 - 1);
  const keepAliveInterval = integer(o, 'keepAliveInterval', 0, 0, 2 ** 31 - 1);
  if (keepAliveInterval > 0 && maxIdleTimeout > 0 && keepAliveInterval >= maxIdleTimeout) {
    throw new RangeError(
      `options.keepAliveInterval must be shorter than maxIdleTimeout (${maxIdleTimeout}), got ${keepAliveInterval}`,
    );
  }
  const dgrams = datagrams(o);
  return {
    handshakeTimeout: integer(o, 'handshakeTimeout', 10_000, 1, 2 ** 31 - 1),
    datagrams: dgrams,
    binding: {
      isServer: kind === 'server',
      protocols: protocols(o),
      verifyPeer: true,
      maxIdleTimeout,
      initialMaxData: integer(o, 'initialMaxData', 16 * MIB, 0, windowMax),
      initialMaxStreamDataBidiLocal: integer(o, 'initialMaxStreamDataBidiLocal', MIB, 0, windowMax),
      initialMaxStreamDataBidiRemote: integer(o, 'initialMaxStreamDataBidiRemote', MIB, 0, windowMax),
      initialMaxStreamDataUni: integer(o, 'initialMaxStreamDataUni', MIB, 0, windowMax),
      initialMaxStreamsBidi: integer(o, 'initialMaxStreamsBidi', 100, 0, MAX_STREAMS),
      initialMaxStreamsUni: integer(o, 'initialMaxStreamsUni', 100, 0, MAX_STREAMS),
      // A ceiling of 0 stops the window's updates: the peer would stall after the first window.
      maxConnectionWindow: integer(o, 'maxConnectionWindow', 24 * MIB, 1, windowMax),
      maxStreamWindow: integer(o, 'maxStreamWindow', 16 * MIB, 1, windowMax),
      congestionControl: congestionControl(o),
      maxUdpPayloadSize: integer(o, 'maxUdpPayloadSize', 1350, 1200, 65527),
      disableActiveMigration: bool(o, 'disableActiveMigration', false),
      grease: bool(o, 'grease', true),
      retry: false,
      maxConnections: 0,
      datagrams: dgrams.enabled,
      pacing: bool(o, 'pacing', true),
      initialRtt: integer(o, 'initialRtt', 100, 1, 60_000),
      keepAliveInterval,
      keylog: keylog(o),
      qlogDir: qlogDir(o),
    },
  };
}

function hashes(v: unknown): Buffer[] {
  if (!Array.isArray(v))
    throw new TypeError('options.serverCertificateHashes must be an array of { algorithm, value }');
  return v.map((h, i) => {
    const where = `options.serverCertificateHashes[${i}]`;
    if (!isObject(h)) throw new TypeError(`${where} must be an object { algorithm: 'sha-256', value }`);
    if (h.algorithm !== 'sha-256')
      throw new TypeError(`${where}.algorithm must be 'sha-256', got ${describe(h.algorithm)}`);
    const value = h.value;
    const bytes = ArrayBuffer.isView(value)
      ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      : value instanceof ArrayBuffer
        ? Buffer.from(value)
        : null;
    if (!bytes) throw new TypeError(`${where}.value must be a BufferSource`);
    if (bytes.length !== 32) throw new RangeError(`${where}.value must be 32 bytes, got ${bytes.length}`);
    return Buffer.from(bytes);
  });
}

/** Client options resolved, with the name to send as SNI and verify. */
export interface ClientResolved extends Resolved {
  serverName?: string;
  signal?: AbortSignal;
}

/** Validates client options. `host` is the URL's host, used as the default `serverName`. */
export function clientOptions(options: unknown, host: string): ClientResolved {
  if (options !== undefined && !isObject(options))
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  const o = options ?? {};
  const r = transport(o, 'client');
  const b = r.binding;
  b.verifyPeer = !bool(o, 'dangerouslyAcceptAnyCertificate', false);
  if (o.serverCertificateHashes !== undefined) {
    const pins = hashes(o.serverCertificateHashes);
    // As in WebTransport, an empty list means ordinary verification.
    if (pins.length > 0) b.serverCertificateHashes = pins;
  }
  if (o.ca !== undefined) {
    if (Array.isArray(o.ca) && o.ca.length === 0)
      throw new TypeError('options.ca must hold at least one certificate, got an empty array');
    const list = Array.isArray(o.ca) ? o.ca : [o.ca];
    b.ca = list.map((pem, i) => readPem(pem, Array.isArray(o.ca) ? `ca[${i}]` : 'ca')).join('\n');
  }
  if (o.serverName !== undefined) {
    if (typeof o.serverName !== 'string' || o.serverName === '') {
      throw new TypeError(`options.serverName must be a non-empty string, got ${describe(o.serverName)}`);
    }
  }
  const name = (o.serverName as string | undefined) ?? (isIP(host) ? undefined : host);
  if (name === undefined && isIP(host)) b.verifyIp = host;
  return { ...r, serverName: name, signal: signalOption(o.signal, 'options.signal') };
}

/** Validates server options. */
export function serverOptions(options: unknown): Resolved & { host: string; port: number } {
  if (options !== undefined && !isObject(options))
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  const o = options ?? {};
  const r = transport(o, 'server');
  const b = r.binding;
  const host = o.host === undefined ? '0.0.0.0' : o.host;
  if (typeof host !== 'string' || isIP(host) === 0) {
    throw new TypeError(`options.host must be an IPv4 or IPv6 address, got ${describe(host)}`);
  }
  const port = integer(o, 'port', 0, 0, 65535);
  if ((o.cert === undefined) !== (o.key === undefined))
    throw new TypeError('options.cert and options.key must be given together');
  if (o.cert !== undefined) {
    b.cert = readPem(o.cert, 'cert');
    b.key = readPem(o.key, 'key');
  }
  b.maxConnections = integer(o, 'maxConnections', 10_000, 1, 2 ** 32 - 1);
  b.retry = bool(o, 'retry', false);
  if (o.statelessResetKey !== undefined) b.statelessResetKey = resetKey(o.statelessResetKey);
  return { ...r, host, port };
}

function resetKey(v: unknown): Buffer {
  if (!(v instanceof Uint8Array))
    throw new TypeError(`options.statelessResetKey must be a Uint8Array, got ${describe(v)}`);
  if (v.length < 16 || v.length > 1024)
    throw new RangeError(`options.statelessResetKey must be 16–1024 bytes, got ${v.length}`);
  return Buffer.from(v); // a copy: later changes to the caller's bytes change nothing
}

/** An `AbortSignal` option, checked. */
export function signalOption(v: unknown, name: string): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw new TypeError(`${name} must be an AbortSignal, got ${describe(v)}`);
  return v;
}
