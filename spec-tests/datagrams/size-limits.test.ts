/**
 * Datagrams that cannot be sent: larger than `maxDatagramSize`, or to a peer that takes none.
 * As in W3C WebTransport such a write resolves (a datagram write is no promise of delivery) and
 * is counted in `tooLargeOutgoing`; only a session that disabled datagrams itself rejects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer } from '../../lib/index.js';
import { pastHandshake, tagged, untag, waitUntil } from '../helpers/datagrams.js';
import { connect, connectPair, echo, echoText, startServer, within } from '../helpers/pair.js';

const MARKER = 9;

function isDisabled(e: unknown): boolean {
  assert.ok(e instanceof QuicTransportError, `expected QuicTransportError, got ${String(e)}`);
  assert.equal(e.code, 'ERR_QUIC_DATAGRAMS_DISABLED');
  return true;
}

describe('datagram size limits', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a datagram of maxDatagramSize + 1 bytes: the write resolves, it is counted, nothing arrives', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      const max = client.datagrams.maxDatagramSize;
      assert.ok(max > 0);
      const writer = client.datagrams.writable.getWriter();
      await within(1000, writer.write(new Uint8Array(max + 1)), 'too large write');
      assert.equal((await client.getStats()).datagrams.tooLargeOutgoing, 1);
      await writer.write(tagged(MARKER, 0));
      const reader = session.datagrams.readable.getReader();
      const { value } = await within(5000, reader.read(), 'marker');
      assert.equal(untag(value as Uint8Array).tag, MARKER, 'the marker is the first to arrive');
      const s = await session.getStats();
      assert.equal(s.datagramsReceived, 1);
      const c = await client.getStats();
      assert.equal(c.datagrams.tooLargeOutgoing, 1);
      assert.equal(c.datagramsSent, 1);
    } finally {
      client.close();
    }
  });

  test('a datagram written before ready that turns out too large is counted once sent is tried', async () => {
    const accepted = server.accept();
    const client = connect(server);
    try {
      const writer = client.datagrams.writable.getWriter();
      // Before the handshake the size is not known yet: it is queued, then refused.
      await within(1000, writer.write(new Uint8Array(4000)), 'queued write');
      await within(10_000, client.ready, 'ready');
      const session = await within(10_000, accepted, 'accept');
      assert.ok(session);
      await waitUntil(5000, async () => (await client.getStats()).datagrams.tooLargeOutgoing === 1, 'counted');
      await pastHandshake(client, session);
      await writer.write(tagged(MARKER, 0));
      const { value } = await within(5000, session.datagrams.readable.getReader().read(), 'marker');
      assert.equal(untag(value as Uint8Array).tag, MARKER);
    } finally {
      client.close();
    }
  });

  test('a writable made with datagrams disabled locally rejects with ERR_QUIC_DATAGRAMS_DISABLED', async () => {
    const accepted = server.accept();
    const client = connect(server, { datagrams: false });
    try {
      await assert.rejects(client.datagrams.writable.getWriter().write(new Uint8Array(1)), isDisabled);
      await within(10_000, client.ready, 'ready');
      const session = await within(10_000, accepted, 'accept');
      assert.ok(session);
      assert.equal(client.datagrams.maxDatagramSize, 0);
      await assert.rejects(client.datagrams.createWritable().getWriter().write(new Uint8Array(1)), isDisabled);
      // The server sees a peer that takes none: its writes are dropped as too large.
      assert.equal(session.datagrams.maxDatagramSize, 0);
      await within(1000, session.datagrams.writable.getWriter().write(new Uint8Array(1)), 'server write');
      assert.equal((await session.getStats()).datagrams.tooLargeOutgoing, 1);
      // And the connection goes on.
      echo(session);
      assert.equal(await within(5000, echoText(client, 'still here'), 'echo'), 'still here');
    } finally {
      client.close();
    }
  });
});

describe('a server with datagrams disabled', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ datagrams: false });
  });
  after(() => server.close());

  test("the client's maxDatagramSize is 0 and its writes resolve, counted as tooLargeOutgoing", async () => {
    const accepted = server.accept();
    const client = connect(server);
    try {
      const writer = client.datagrams.writable.getWriter();
      await within(1000, writer.write(new Uint8Array(10)), 'write before ready');
      await within(10_000, client.ready, 'ready');
      const session = await within(10_000, accepted, 'accept');
      assert.ok(session);
      assert.equal(client.datagrams.maxDatagramSize, 0);
      await within(1000, writer.write(new Uint8Array(10)), 'write after ready');
      await waitUntil(5000, async () => (await client.getStats()).datagrams.tooLargeOutgoing === 2, 'both counted');
      assert.equal((await client.getStats()).datagramsSent, 0);
      await assert.rejects(session.datagrams.writable.getWriter().write(new Uint8Array(1)), isDisabled);
      echo(session);
      assert.equal(await within(5000, echoText(client, 'still here'), 'echo'), 'still here');
      assert.equal((await session.getStats()).datagramsReceived, 0);
    } finally {
      client.close();
    }
  });
});
