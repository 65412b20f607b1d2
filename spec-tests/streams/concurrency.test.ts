import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QuicServer } from '../../lib/index.js';
import { connect, connectPair, echo, readAll, startServer, within, writeText } from '../helpers/pair.js';

async function roundTrip(
  stream: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> },
  text: string,
) {
  await writeText(stream.writable, text);
  return (await readAll(stream.readable)).toString();
}

describe('concurrency', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('hundreds of concurrent streams on one connection', async () => {
    // The server allows 100 streams at once (the default): with waitUntilAvailable the rest wait
    // for MAX_STREAMS credit.
    const { client, session } = await connectPair(server);
    echo(session);
    const n = 400;
    const results = await within(
      30_000,
      Promise.all(
        Array.from({ length: n }, async (_, i) =>
          roundTrip(await client.createBidirectionalStream({ waitUntilAvailable: true }), `stream ${i} `.repeat(50)),
        ),
      ),
      'all streams',
    );
    results.forEach((text, i) => assert.equal(text, `stream ${i} `.repeat(50)));
    client.close();
  });

  test('a raised stream limit lets hundreds run at once', async () => {
    const wide = await startServer({ initialMaxStreamsBidi: 1000 });
    try {
      const { client, session } = await connectPair(wide);
      echo(session);
      const streams = await within(
        5000,
        Promise.all(Array.from({ length: 500 }, () => client.createBidirectionalStream())),
        'open',
      );
      const results = await within(30_000, Promise.all(streams.map((s, i) => roundTrip(s, `#${i}`))), 'echo');
      results.forEach((text, i) => assert.equal(text, `#${i}`));
      client.close();
    } finally {
      await wide.close();
    }
  });

  test('tens of concurrent connections on one server', async () => {
    const accepted = (async () => {
      for (let i = 0; i < 40; i++) {
        const session = await server.accept();
        assert.ok(session);
        echo(session);
      }
    })();
    const clients = Array.from({ length: 40 }, () => connect(server));
    await within(20_000, Promise.all(clients.map((c) => c.ready)), 'handshakes');
    const results = await within(
      20_000,
      Promise.all(clients.map(async (c, i) => roundTrip(await c.createBidirectionalStream(), `client ${i}`))),
      'echoes',
    );
    results.forEach((text, i) => assert.equal(text, `client ${i}`));
    await accepted;
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
  });
});
