/**
 * Benchmark worker: a quichex server on 127.0.0.1. Reports its port and certificate hash, then,
 * on every session, counts each incoming unidirectional stream (bulk) and echoes each
 * bidirectional stream (echo). Started by bench/run.ts. Options:
 *   --push <bytes>: also opens a unidirectional stream to each client and sends that many bytes
 *     (bulk server→client), reporting `sent`.
 *   --paused 1: holds incoming unidirectional streams without ever reading them.
 *   --datagrams count|echo: counts the datagrams every session receives (reported when asked),
 *     or sends each one back.
 *   --idle <ms>: maxIdleTimeout, for scenarios that hold idle connections.
 */
import { randomBytes } from 'node:crypto';
import { QuicServer, type QuicReceiveStream, type QuicTransport } from './quichex.js';
import { now, onControl, report, workerArgs } from './common.js';
import { countAll, writeAll } from './web-streams.js';

const args = workerArgs();
const push = Number(args.push ?? 0);
const server = new QuicServer({
  host: '127.0.0.1',
  port: 0,
  protocols: ['bench'],
  maxConnections: 100_000,
  ...(args.idle ? { maxIdleTimeout: Number(args.idle) } : {}),
});
await server.listen();
const datagrams = { bytes: 0, packets: 0, last: 0 };
onControl(
  () => server.close(),
  () => report({ type: 'received', ...datagrams }),
);
report({
  type: 'ready',
  port: server.address.port,
  hash: Buffer.from(server.certificateHashes[0].value).toString('hex'),
});

async function count(readable: ReadableStream<Uint8Array>): Promise<void> {
  const counted = await countAll(readable);
  report({ type: 'received', ...counted, last: now() });
}

/** Streams held unread by --paused, so that nothing collects them. */
const held: QuicReceiveStream[] = [];

async function countEach(session: QuicTransport): Promise<void> {
  // Each stream is read on its own, so that parallel streams are read in parallel.
  for await (const readable of session.incomingUnidirectionalStreams)
    if (args.paused) held.push(readable);
    else count(readable).catch(() => {});
}

async function echoEach(session: QuicTransport): Promise<void> {
  for await (const { readable, writable } of session.incomingBidirectionalStreams)
    readable.pipeTo(writable).catch(() => {});
}

async function pushTo(session: QuicTransport): Promise<void> {
  const writable = await session.createUnidirectionalStream();
  const chunk = randomBytes(64 * 1024);
  const start = now();
  await writeAll(writable, push, chunk);
  report({ type: 'sent', start, bytes: push });
}

async function datagramsOf(session: QuicTransport): Promise<void> {
  const echo = args.datagrams === 'echo' ? session.datagrams.writable.getWriter() : undefined;
  for await (const datagram of session.datagrams.readable) {
    if (echo) {
      echo.write(datagram).catch(() => {});
    } else {
      datagrams.bytes += datagram.byteLength;
      datagrams.packets++;
      datagrams.last = now();
    }
  }
}

for await (const session of server) {
  const tasks = [countEach(session), echoEach(session)];
  if (push > 0) tasks.push(pushTo(session));
  if (args.datagrams) tasks.push(datagramsOf(session));
  Promise.all(tasks).catch(() => {});
}
