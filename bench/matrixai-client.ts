/**
 * Benchmark worker: @matrixai/quic clients pinned to the server's certificate hash (see `pinned`
 * in matrixai.ts for how that differs from quichex), the peer-library baseline's side of what
 * quic-client.ts and quic-clients.ts do. Started by bench/run.ts with --port, --hash and one --mode:
 *   bulk --size <bytes>: sends that many bytes on one unidirectional stream, reports when the
 *     first byte was written, and stays connected until told to stop.
 *   echo --iterations <n> --warmup <n>: sequential round trips of ECHO_SIZE bytes on one
 *     bidirectional stream; reports the round-trip times after warm-up.
 *   handshake --count <n> --concurrency <c> --warmup <w>: opens, uses (one echo on a new stream)
 *     and closes n clients, each with its own socket, c at a time, after w untimed ones (at least
 *     one) at the same concurrency; reports `handshakes`.
 */
import { randomBytes } from 'node:crypto';
import { ECHO_SIZE, now, onControl, pool, report, workerArgs } from './common.js';
import { clientCrypto, loadMatrixai, pinned, type MatrixaiClient } from './matrixai.js';
import { echoSamples, roundTrip, writeAll } from './web-streams.js';

const CHUNK = 64 * 1024;
/** A handshake that has not completed within this long fails. */
const CONNECT_TIMEOUT_MS = 10_000;

const { QUICClient, logger } = await loadMatrixai();
const args = workerArgs();
const n = (name: string) => Number(args[name]);
const open = new Set<MatrixaiClient>();
const stopping = onControl(async () => {
  // Some of its timers can outlive a destroy; the worker has nothing left to say after one.
  setTimeout(() => process.exit(0), 1000).unref();
  await Promise.allSettled([...open].map((c) => c.destroy({ force: true })));
});

/** A new client, connected and verified, kept in `open` until destroyed. */
async function connect(): Promise<MatrixaiClient> {
  const client = await QUICClient.createQUICClient(
    {
      host: '127.0.0.1',
      port: n('port'),
      localHost: '127.0.0.1',
      crypto: clientCrypto(),
      config: { applicationProtos: ['bench'], verifyPeer: true, verifyCallback: pinned(args.hash) },
      logger,
    },
    { timer: CONNECT_TIMEOUT_MS },
  );
  open.add(client);
  return client;
}

/** Destroys `client` in the background, as quichex's close does not wait for the peer. */
function close(client: MatrixaiClient): void {
  client
    .destroy({ force: true })
    .catch(() => {})
    .finally(() => open.delete(client));
}

async function bulk(size: number): Promise<void> {
  const { connection } = await connect();
  const chunk = randomBytes(CHUNK);
  const stream = connection.newStream('uni');
  const start = now();
  await writeAll(stream.writable, size, chunk);
  report({ type: 'sent', start, bytes: size });
}

async function echo(iterations: number, warmup: number): Promise<void> {
  const { connection } = await connect();
  const samples = await echoSamples(connection.newStream('bidi'), iterations, warmup);
  report({ type: 'samples', samples });
}

const message = randomBytes(ECHO_SIZE);

/** Connects, echoes once on a new stream and closes; resolves with the time to that echo. */
async function shortSession(): Promise<number> {
  const start = now();
  const client = await connect();
  try {
    const stream = client.connection.newStream('bidi');
    const writer = stream.writable.getWriter();
    await roundTrip(writer, stream.readable.getReader(), message);
    writer.close().catch(() => {});
    return now() - start;
  } finally {
    close(client);
  }
}

async function handshakes(count: number, concurrency: number, warmup: number): Promise<void> {
  await pool(Math.max(warmup, 1), concurrency, async () => void (await shortSession())); // as in quic-clients.ts
  const ttfb: number[] = [];
  const start = now();
  const failed = await pool(count, concurrency, async () => void ttfb.push(await shortSession()));
  report({ type: 'handshakes', count: ttfb.length, failed, ms: now() - start, ttfb });
}

try {
  if (args.mode === 'bulk') await bulk(n('size'));
  else if (args.mode === 'echo') await echo(n('iterations'), n('warmup'));
  else if (args.mode === 'handshake') await handshakes(n('count'), n('concurrency'), n('warmup'));
  else throw new Error(`unknown mode ${args.mode}`);
} catch (e) {
  if (!stopping()) throw e; // Stopped mid-run (a timeout): the closed connections are expected.
}
