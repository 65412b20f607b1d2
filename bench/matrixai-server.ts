/**
 * Benchmark worker: an @matrixai/quic server on 127.0.0.1, the peer-library baseline's side of
 * what quic-server.ts does. Reports its port and certificate hash, then on every connection counts
 * each incoming unidirectional stream (bulk, reporting `received`) and echoes each bidirectional
 * stream (echo, handshake). The certificate is a self-signed one from quichex's
 * `generateCertificate`, the same kind quic-server.ts uses; clients pin its hash. Started by
 * bench/run.ts.
 */
import { generateCertificate } from './quichex.js';
import { now, onControl, report } from './common.js';
import { detail, loadMatrixai, serverCrypto, type MatrixaiConnection, type MatrixaiStream } from './matrixai.js';
import { countAll } from './web-streams.js';

const { QUICServer, events, logger } = await loadMatrixai();
const { cert, key, hash } = generateCertificate(['localhost', '127.0.0.1']);
const server = new QUICServer({
  crypto: serverCrypto(),
  // verifyPeer false: servers do not ask for client certificates, as in quichex.
  config: { key, cert, applicationProtos: ['bench'], verifyPeer: false },
  logger,
});

async function count(readable: ReadableStream<Uint8Array>): Promise<void> {
  const counted = await countAll(readable);
  report({ type: 'received', ...counted, last: now() });
}

function onStream(event: Event): void {
  const stream = detail<MatrixaiStream>(event);
  // Each stream is read on its own, so that parallel streams are read in parallel.
  if (stream.type === 'uni') count(stream.readable).catch(() => {});
  else stream.readable.pipeTo(stream.writable).catch(() => {});
}

server.addEventListener(events.EventQUICServerConnection.name, (event) => {
  detail<MatrixaiConnection>(event).addEventListener(events.EventQUICConnectionStream.name, onStream);
});
await server.start({ host: '127.0.0.1', port: 0 });
onControl(async () => {
  // Some of its timers can outlive a stop; the worker has nothing left to say after one.
  setTimeout(() => process.exit(0), 1000).unref();
  await server.stop({ force: true });
});
report({ type: 'ready', port: server.port, hash: Buffer.from(hash.value).toString('hex') });
