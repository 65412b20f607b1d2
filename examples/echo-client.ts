/**
 * Echo client: sends each line to examples/echo-server.ts on its own stream and prints the echo.
 *
 *   npx tsx examples/echo-client.ts [--port 4433] [--host 127.0.0.1] [--cert-file <path>] [line ...]
 *   printf 'one\ntwo\n' | npx tsx examples/echo-client.ts
 *
 * Lines come from the arguments, or from stdin when there are none. The server is trusted through
 * the certificate file it wrote (same defaults and environment variables as the server).
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { QuicTransport } from '../lib/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: process.env.QUICHEX_PORT ?? '4433' },
    host: { type: 'string', default: process.env.QUICHEX_HOST ?? '127.0.0.1' },
    'cert-file': { type: 'string', default: process.env.QUICHEX_ECHO_CERT ?? join(tmpdir(), '.quichex-echo-cert.pem') },
  },
});

const certFile = values['cert-file'];
if (!existsSync(certFile)) {
  console.error(`no server certificate at ${certFile}: start examples/echo-server.ts first (or pass --cert-file)`);
  process.exit(1);
}
const transport = new QuicTransport(`quic://${values.host}:${values.port}`, {
  protocols: ['echo'],
  ca: readFileSync(certFile, 'utf8'),
  serverName: 'localhost',
});

/** Sends `line` on a new stream, closes our side, and reads the echo to its end. */
async function echo(line: string): Promise<string> {
  const { readable, writable } = await transport.createBidirectionalStream();
  const writer = writable.getWriter();
  await writer.write(new TextEncoder().encode(line));
  await writer.close();
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of readable) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

try {
  await transport.ready;
  const lines = positionals.length > 0 ? positionals : createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) console.log(`< ${await echo(line)}`);
  transport.close({ closeCode: 0, reason: 'bye' });
  await transport.closed;
} catch (e) {
  console.error(`echo failed: ${(e as Error).message}`);
  transport.close();
  process.exitCode = 1;
}
