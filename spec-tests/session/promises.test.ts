/**
 * A session's `ready`, `closed` and `draining` are made when first asked for (lib/settlement.ts):
 * asked for before or after the session settles, they are the same promise every time, carry the
 * same outcome, and a rejection nobody awaits is not an unhandled rejection (as in WebTransport).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { QuicServer } from '../../lib/index.js';
import { connect, connectPair, startServer, within } from '../helpers/pair.js';

describe('session promises', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('asked for only after the session ended, they hold its outcome', async () => {
    const { client, session } = await connectPair(server);
    client.close({ closeCode: 7, reason: 'late' });
    // Nothing asked the server's session for a promise until now.
    await within(5000, session.draining, 'draining');
    assert.deepEqual(await within(5000, session.closed, 'closed'), { closeCode: 7, reason: 'late' });
    await session.ready;
    assert.deepEqual(await client.closed, { closeCode: 7, reason: 'late' });
  });

  test('each is the same promise every time, before and after it settles', async () => {
    const { client } = await connectPair(server);
    const closed = client.closed;
    assert.equal(client.ready, client.ready);
    assert.equal(client.closed, closed);
    client.close();
    await closed;
    assert.equal(client.closed, closed);
    assert.equal(client.draining, client.draining);
  });

  test('a failure nobody awaits is not an unhandled rejection, asked for or not', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      const asked = connect(server, { signal: controller.signal });
      void asked.ready; // made while pending, then rejected
      void asked.closed;
      const unasked = connect(server, { signal: AbortSignal.abort() });
      controller.abort();
      await nextTurn();
      // Made after the failure: already rejected, and still handled.
      const late = unasked.closed;
      await nextTurn();
      await nextTurn();
      assert.deepEqual(unhandled, []);
      await assert.rejects(asked.ready, { code: 'ERR_QUIC_ABORTED' });
      await assert.rejects(late, { code: 'ERR_QUIC_ABORTED' });
      await assert.rejects(unasked.ready, { code: 'ERR_QUIC_ABORTED' });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
