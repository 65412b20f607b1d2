/**
 * Benchmark worker: a quichex server on 127.0.0.1. Reports its port and certificate hash, then
 * counts each incoming unidirectional stream (bulk) and echoes each bidirectional stream (echo).
 * Started by bench/run.ts.
 */
import { QuicServer, type QuicTransport } from '../lib/index.js';
import { now, onControl, report } from './common.js';

const server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: ['bench'] });
await server.listen();
onControl(() => server.close());
report({
  type: 'ready',
  port: server.address.port,
  hash: Buffer.from(server.certificateHashes[0].value).toString('hex'),
});

async function count(readable: ReadableStream<Uint8Array>): Promise<void> {
  let bytes = 0;
  let packets = 0;
  for await (const chunk of readable) {
    bytes += chunk.byteLength;
    packets++;
  }
  report({ type: 'received', bytes, packets, last: now() });
}

async function countEach(session: QuicTransport): Promise<void> {
  for await (const readable of session.incomingUnidirectionalStreams) await count(readable);
}

async function echoEach(session: QuicTransport): Promise<void> {
  for await (const { readable, writable } of session.incomingBidirectionalStreams)
    readable.pipeTo(writable).catch(() => {});
}

for await (const session of server) Promise.all([countEach(session), echoEach(session)]).catch(() => {});
