import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QuicServer } from '../../lib/index.js';
import { connectPair, nextIncoming, readAll, startServer, within, writeText } from '../helpers/pair.js';

describe('unidirectional and server-initiated streams', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('client → server unidirectional stream', async () => {
    const { client, session } = await connectPair(server);
    await writeText(await client.createUnidirectionalStream(), 'up');
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    assert.equal((await readAll(readable)).toString(), 'up');
    client.close();
  });

  test('server → client unidirectional stream', async () => {
    const { client, session } = await connectPair(server);
    await writeText(await session.createUnidirectionalStream(), 'down');
    const readable = await nextIncoming(client.incomingUnidirectionalStreams);
    assert.equal((await readAll(readable)).toString(), 'down');
    client.close();
  });

  test('server-initiated bidirectional stream', async () => {
    const { client, session } = await connectPair(server);
    const ours = await session.createBidirectionalStream();
    await writeText(ours.writable, 'ping');
    const theirs = await nextIncoming(client.incomingBidirectionalStreams);
    assert.equal((await readAll(theirs.readable)).toString(), 'ping');
    await writeText(theirs.writable, 'pong');
    assert.equal((await readAll(ours.readable)).toString(), 'pong');
    client.close();
  });

  test('streams keep their own bytes when interleaved', async () => {
    const { client, session } = await connectPair(server);
    const streams = await Promise.all([1, 2, 3, 4].map(() => client.createUnidirectionalStream()));
    const writers = streams.map((s) => s.getWriter());
    for (let round = 0; round < 50; round++) {
      await Promise.all(writers.map((w, i) => w.write(new TextEncoder().encode(`${i}:${round};`))));
    }
    await Promise.all(writers.map((w) => w.close()));
    const reader = session.incomingUnidirectionalStreams.getReader();
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { value } = await within(5000, reader.read(), 'incoming');
      texts.push((await readAll(value as ReadableStream<Uint8Array>)).toString());
    }
    for (const text of texts) {
      const parts = text.split(';').filter(Boolean);
      const who = parts[0].split(':')[0];
      assert.deepEqual(
        parts,
        Array.from({ length: 50 }, (_, r) => `${who}:${r}`),
      );
    }
    client.close();
  });
});
