/**
 * The peer-library baseline: `@matrixai/quic` (TypeScript + napi-rs + quiche, the nearest existing
 * library), a devDependency of bench/package.json only, installed into bench/node_modules on
 * demand. Here: installing and checking it for bench/run.ts, and for its workers
 * (matrixai-server.ts, matrixai-client.ts) the part of its API they use, its crypto callbacks and
 * the certificate pinning.
 *
 * The package is loaded with a computed specifier and typed by the interfaces below rather than
 * by its own typings, so that `tsc` gives the same answer whether or not it is installed (it is
 * not, in a fresh checkout). They follow its 2.0.9 typings, the exact version bench/package.json
 * pins.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate, createHash, createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const PACKAGE = '@matrixai/quic';
/** The version bench/package.json pins, for the table's heading. */
export const MATRIXAI_VERSION: string = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))
  .devDependencies[PACKAGE];
/** Its logger, a dependency of the package that npm hoists beside it (see bench/package-lock.json). */
const LOGGER = '@matrixai/logger';
/** An install that takes longer than this has failed (no network, say). */
const INSTALL_TIMEOUT_MS = 180_000;

/**
 * Installs @matrixai/quic into bench/node_modules if it is not there, then loads it in a child
 * process, which also loads its prebuilt native module for this platform. Returns why it cannot be
 * used, or `undefined` when it can.
 */
export function prepareMatrixai(): string | undefined {
  if (!existsSync(fileURLToPath(new URL(`./node_modules/${PACKAGE}/package.json`, import.meta.url)))) {
    console.error(`installing ${PACKAGE} into bench/node_modules (bench/package.json)`);
    const install = spawnSync('npm', ['install', '--prefix', BENCH, '--no-audit', '--no-fund'], {
      stdio: ['ignore', 2, 'inherit'],
      timeout: INSTALL_TIMEOUT_MS,
    });
    if (install.error) return `npm install failed: ${install.error.message}`;
    if (install.status !== 0) return `npm install exited with ${install.signal ?? `code ${install.status}`}`;
  }
  const load = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `await import('${PACKAGE}'); await import('${LOGGER}');`],
    { cwd: BENCH, encoding: 'utf8', timeout: 30_000 },
  );
  if (load.error) return `cannot load it: ${load.error.message}`;
  if (load.status !== 0) {
    const why = load.stderr.split('\n').find((line) => /Error/.test(line)) ?? `exit code ${load.status}`;
    return `cannot load it: ${why.trim()}`;
  }
  return undefined;
}

/** One of its streams: WHATWG streams both ways (a unidirectional one uses one side). */
export interface MatrixaiStream {
  readonly type: 'bidi' | 'uni';
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

/** A connection: an EventTarget that dispatches EventQUICConnectionStream for each peer stream. */
export interface MatrixaiConnection extends EventTarget {
  newStream(type?: 'bidi' | 'uni'): MatrixaiStream;
}

/** How a connection or a client is stopped; `force` cancels its streams rather than waiting. */
interface StopOptions {
  force?: boolean;
}

/** A server: an EventTarget that dispatches EventQUICServerConnection for each new connection. */
export interface MatrixaiServer extends EventTarget {
  readonly port: number;
  start(options: { host: string; port: number }): Promise<void>;
  stop(options?: StopOptions): Promise<void>;
}

/** A client: one connection with its own socket. */
export interface MatrixaiClient {
  readonly connection: MatrixaiConnection;
  destroy(options?: StopOptions): Promise<void>;
}

/** The config fields the bench sets (`QUICConfig`); the rest keep the library's defaults. */
interface Config {
  key?: string;
  cert?: string;
  applicationProtos: string[];
  verifyPeer: boolean;
  verifyCallback?: (certs: Uint8Array[], ca: Uint8Array[]) => Promise<number | undefined>;
}

/** Its logger: the default level logs everything, so the workers pass one at WARN. */
export interface MatrixaiLogger {
  readonly level: number;
}

/** The module's exports that the workers use. */
export interface Matrixai {
  QUICServer: new (options: { crypto: ServerCrypto; config: Config; logger: MatrixaiLogger }) => MatrixaiServer;
  QUICClient: {
    createQUICClient(
      options: {
        host: string;
        port: number;
        localHost: string;
        crypto: ClientCrypto;
        config: Config;
        logger: MatrixaiLogger;
      },
      context?: { timer?: number },
    ): Promise<MatrixaiClient>;
  };
  events: Record<'EventQUICServerConnection' | 'EventQUICConnectionStream', { name: string }>;
  /** A logger at WARN. */
  logger: MatrixaiLogger;
}

/** Loads @matrixai/quic and a logger for it (bench/run.ts has checked that both load). */
export async function loadMatrixai(): Promise<Matrixai> {
  const [quic, logging] = await Promise.all([import(PACKAGE), import(LOGGER)]);
  const { default: Logger, LogLevel } = logging as {
    default: new (key: string, level: number) => MatrixaiLogger;
    LogLevel: { WARN: number };
  };
  return { ...(quic as Omit<Matrixai, 'logger'>), logger: new Logger('matrixai', LogLevel.WARN) };
}

/** The detail of one of its events (`CustomEvent`-like). */
export const detail = <T>(event: Event) => (event as CustomEvent<T>).detail;

/** It hands callbacks an `ArrayBuffer`, or a Node Buffer (a view of one). */
const bytes = (data: ArrayBuffer | ArrayBufferView) =>
  ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

interface ServerCrypto {
  key: ArrayBuffer;
  ops: {
    sign(key: ArrayBuffer, data: ArrayBuffer): Promise<ArrayBuffer>;
    verify(key: ArrayBuffer, data: ArrayBuffer, signature: ArrayBuffer): Promise<boolean>;
  };
}

interface ClientCrypto {
  ops: { randomBytes(data: ArrayBuffer): Promise<void> };
}

const hmac = (key: ArrayBuffer, data: ArrayBuffer) => createHmac('sha256', bytes(key)).update(bytes(data)).digest();

/** The server's crypto: HMAC-SHA-256 with a random key, for its retry tokens. */
export function serverCrypto(): ServerCrypto {
  return {
    key: randomFillSync(new Uint8Array(32)).buffer,
    ops: {
      sign: async (key, data) => new Uint8Array(hmac(key, data)).buffer,
      verify: async (key, data, signature) => {
        const expected = hmac(key, data);
        const given = bytes(signature);
        return given.byteLength === expected.byteLength && timingSafeEqual(given, expected);
      },
    },
  };
}

/** The client's crypto: random bytes (for connection ids). */
export const clientCrypto = (): ClientCrypto => ({
  ops: { randomBytes: async (data) => void randomFillSync(bytes(data)) },
});

/** TLS alerts as QUIC crypto errors (0x100 + alert), as its verifyCallback returns them. */
const BAD_CERTIFICATE = 0x100 + 42;
const CERTIFICATE_EXPIRED = 0x100 + 45;
const FOURTEEN_DAYS_MS = 14 * 24 * 3600 * 1000;

/**
 * A verifyCallback that pins the server's leaf certificate to its SHA-256 `hash` (hex) and, like
 * quichex's `serverCertificateHashes`, wants it currently valid for at most 14 days; the chain and
 * the name are not checked, as with quichex's pinning. What differs is when: quichex checks inside
 * the TLS handshake (BoringSSL's custom verify callback), while @matrixai/quic runs this callback
 * in JavaScript once quiche reports the handshake established, and only then lets streams flow.
 */
export function pinned(hash: string): Config['verifyCallback'] {
  const pin = Buffer.from(hash, 'hex');
  return async ([leaf]) => {
    if (!leaf || !createHash('sha256').update(leaf).digest().equals(pin)) return BAD_CERTIFICATE;
    const cert = new X509Certificate(leaf);
    const [from, to] = [Date.parse(cert.validFrom), Date.parse(cert.validTo)];
    const now = Date.now();
    return from <= now && now <= to && to - from <= FOURTEEN_DAYS_MS ? undefined : CERTIFICATE_EXPIRED;
  };
}
