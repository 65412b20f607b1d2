/**
 * Echo server: every bidirectional stream a client opens is sent back to it, byte for byte.
 *
 *   npx tsx examples/echo-server.ts [--port 4433] [--host 127.0.0.1] [--cert-file <path>]
 *
 * The port also comes from QUICHEX_PORT, the host from QUICHEX_HOST. The server uses a generated
 * self-signed certificate and writes it (PEM) to --cert-file or QUICHEX_ECHO_CERT, by default
 * `.quichex-echo-cert.pem` in the OS temp directory, so that examples/echo-client.ts can trust it.
 * Ctrl-C closes the server and removes the certificate file.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { QuicServer, type QuicTransport } from '../lib/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.QUICHEX_PORT ?? '4433' },
    host: { type: 'string', default: process.env.QUICHEX_HOST ?? '127.0.0.1' },
    'cert-file': { type: 'string', default: process.env.QUICHEX_ECHO_CERT ?? join(tmpdir(), '.quichex-echo-cert.pem') },
  },
});
const certFile = values['cert-file'];

const server = new QuicServer({ host: values.host, port: Number(values.port), protocols: ['echo'] });
await server.listen();
writeFileSync(certFile, server.certificate ?? '');
const { address, port } = server.address;
console.log(`echo server on quic://${address}:${port} (certificate in ${certFile}); Ctrl-C to stop`);

process.once('SIGINT', () => {
  console.log('\nclosing');
  rmSync(certFile, { force: true });
  void server.close();
});

/** Pipes each incoming stream back to where it came from, until the session ends. */
async function serve(session: QuicTransport): Promise<void> {
  const peer = `${session.remoteAddress?.address}:${session.remoteAddress?.port}`;
  console.log(`${peer} connected`);
  for await (const { readable, writable } of session.incomingBidirectionalStreams) {
    readable.pipeTo(writable).catch((e: Error) => console.error(`${peer}: stream failed: ${e.message}`));
  }
  const { reason } = await session.closed;
  console.log(`${peer} closed${reason ? ` (${reason})` : ''}`);
}

for await (const session of server) {
  serve(session).catch((e: Error) => console.error(`session failed: ${e.message}`));
}
