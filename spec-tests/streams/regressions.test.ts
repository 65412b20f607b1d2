/** Regressions from review: each test names the defect it guards against. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicBidirectionalStream, type QuicServer } from '../../lib/index.js';
import {
  connect,
  connectPair,
  echoText,
  echo,
  nextIncoming,
  outcome,
  readAll,
  startServer,
  within,
  writeUntilError,
} from '../helpers/pair.js';

const WINDOW = 64 * 1024;

/** Writes until a write stays pending (the peer's window is full); returns that write. */
async function fillWindow(writer: WritableStreamDefaultWriter<Uint8Array>): Promise<{ pending: Promise<void> }> {
  for (let i = 0; i < 1000; i++) {
    const write = writer.write(new Uint8Array(16 * 1024));
    write.catch(() => {});
    const settled = await Promise.race([
      write.then(
        () => true,
        () => true,
      ),
      new Promise((r) => setTimeout(r, 200, false)),
    ]);
    if (!settled) return { pending: write };
  }
  throw new Error('the writer was never held back');
}

describe('regressions', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({
      initialMaxStreamDataUni: WINDOW,
      initialMaxStreamDataBidiRemote: WINDOW,
      maxStreamWindow: WINDOW,
    });
  });
  after(() => server.close());

  test('STOP_SENDING while the writer is blocked rejects the pending write with the code (no busy loop)', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const { pending } = await fillWindow(writer);
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    await readable.cancel(new QuicTransportError('stop', { streamErrorCode: 11 }));
    const error = await within(
      5000,
      pending.then(
        () => null,
        (e: unknown) => e,
      ),
      'pending write',
    );
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 11);
    client.close();
  });

  test('abort() during a blocked write sends RESET_STREAM at once', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const { pending } = await fillWindow(writer);
    const aborted = writer.abort(new QuicTransportError('give up', { streamErrorCode: 5 }));
    await within(5000, aborted, 'abort');
    await assert.rejects(pending);
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    const error = await within(
      5000,
      (async () => {
        for await (const _ of readable);
      })().then(
        () => null,
        (e: unknown) => e,
      ),
      'reset reaches the reader',
    );
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.streamErrorCode, 5);
    client.close();
  });

  test('after the user cancels incoming streams, new peer streams are refused and close still works', async () => {
    const { client, session } = await connectPair(server);
    await session.incomingBidirectionalStreams.cancel();
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1]));
    const refused = await within(
      5000,
      readable
        .getReader()
        .read()
        .then(
          () => null,
          (e: unknown) => e,
        ),
      'refusal',
    );
    assert.ok(refused instanceof QuicTransportError);
    assert.equal(refused.code, 'ERR_QUIC_STREAM_RESET');
    session.close({ closeCode: 2, reason: 'done' });
    assert.deepEqual(await within(5000, session.closed, 'closed'), { closeCode: 2, reason: 'done' });
    assert.deepEqual(await within(5000, client.closed, 'client closed'), { closeCode: 2, reason: 'done' });
  });

  test('cancelling the incoming streams refuses the streams already queued, not only later ones', async () => {
    const { client, session } = await connectPair(server);
    const streams: QuicBidirectionalStream[] = [];
    for (let i = 0; i < 3; i++) {
      const stream = await client.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      await writer.write(new Uint8Array([i]));
      writer.releaseLock();
      streams.push(stream);
    }
    const incoming = session.incomingBidirectionalStreams.getReader();
    const first = await within(5000, incoming.read(), 'first incoming stream');
    // The other two arrive while nobody reads the incoming streams.
    await new Promise((r) => setTimeout(r, 200));
    await incoming.cancel();
    for (const stream of streams.slice(1)) {
      const refused = await within(5000, outcome(stream.readable.getReader().read()), 'refusal');
      assert.ok(refused instanceof QuicTransportError, String(refused));
      assert.equal(refused.code, 'ERR_QUIC_STREAM_RESET');
    }
    // The stream taken before the cancel is the user's, and still works.
    const taken = first.value as QuicBidirectionalStream;
    void taken.readable.pipeTo(taken.writable);
    const writer = streams[0].writable.getWriter();
    await writer.write(new Uint8Array([7]));
    await writer.close();
    assert.deepEqual([...(await within(5000, readAll(streams[0].readable), 'echo'))], [0, 7]);
    client.close();
  });

  test('a BYOB read left with part of an element errors that stream alone, not the connection', async () => {
    const { client, session } = await connectPair(server);
    const { writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1]));
    const incoming = await nextIncoming(session.incomingBidirectionalStreams);
    const read = outcome(incoming.readable.getReader({ mode: 'byob' }).read(new Uint16Array(4)));
    // The byte arrives first, the FIN in a later packet.
    await new Promise((r) => setTimeout(r, 100));
    await writer.close();
    assert.ok((await within(5000, read, 'read')) instanceof TypeError);
    echo(session);
    assert.equal(await echoText(client, 'still open'), 'still open');
    client.close();
  });

  test('two pending BYOB reads both settle when FIN arrives with data', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const readable = await (async () => {
      await writer.write(new Uint8Array([1, 2, 3]));
      return nextIncoming(session.incomingUnidirectionalStreams);
    })();
    const reader = readable.getReader({ mode: 'byob' });
    const first = reader.read(new Uint8Array(16));
    const second = reader.read(new Uint8Array(16));
    await writer.close();
    const a = await within(5000, first, 'first read');
    const b = await within(5000, second, 'second read');
    const got = [...(a.value ?? []), ...(b.done ? [] : (b.value ?? []))];
    assert.deepEqual(got, [1, 2, 3]);
    if (!b.done) assert.equal((await within(5000, reader.read(new Uint8Array(16)), 'end')).done, true);
    client.close();
  });

  test('a FIN that comes alone after the data was acknowledged reaches the peer when the peer FIN is read in the same turn (quiche#2525)', async () => {
    const { client, session } = await connectPair(server);
    const serverSide = (async () => {
      const { readable, writable } = await nextIncoming(session.incomingBidirectionalStreams);
      const reader = readable.getReader();
      let got = 0;
      while (got < 10) got += ((await reader.read()).value ?? new Uint8Array()).length;
      const writer = writable.getWriter();
      await writer.write(new Uint8Array(100_000).fill(1));
      await writer.close();
      return reader.read();
    })();
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    const reader = readable.getReader();
    await writer.write(new Uint8Array(10));
    let total = ((await reader.read()).value ?? new Uint8Array()).length;
    // The rest of the answer and its FIN wait in quiche, and our 10 bytes are acknowledged.
    await new Promise((r) => setTimeout(r, 300));
    // Our FIN comes alone; the reads that follow in the same turn take the peer's FIN.
    await writer.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
    }
    assert.equal(total, 100_000);
    assert.equal((await within(5000, serverSide, "the client's FIN")).done, true);
    client.close();
  });

  test('an empty stream closed at once ends at a peer that grants no stream credit (a FIN needs none)', async () => {
    const stingy = await startServer({ initialMaxStreamDataUni: 0 });
    try {
      const { client, session } = await connectPair(stingy);
      await (await client.createUnidirectionalStream()).close();
      const readable = await nextIncoming(session.incomingUnidirectionalStreams);
      assert.equal((await within(5000, readable.getReader().read(), 'end of the stream')).done, true);
      client.close();
    } finally {
      await stingy.close();
    }
  });

  test('a write of one byte after STOP_SENDING rejects with the code, as longer writes do', async () => {
    const { client, session } = await connectPair(server);
    const stopped = async (streamErrorCode: number) => {
      const writer = (await client.createUnidirectionalStream()).getWriter();
      await writer.write(new Uint8Array(5));
      const readable = await nextIncoming(session.incomingUnidirectionalStreams);
      await readable.cancel(new QuicTransportError('stop', { streamErrorCode }));
      return writer;
    };
    const oneByte = await stopped(7);
    const probe = await stopped(8);
    // Once the second STOP_SENDING is in, so is the first (sent before it).
    const probed = await writeUntilError(probe, 'stop sending');
    assert.ok(probed instanceof QuicTransportError, String(probed));
    const error = await outcome(oneByte.write(new Uint8Array(1)));
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 7);
    client.close();
  });

  test('an empty serverCertificateHashes list means ordinary verification', async () => {
    const client = connect(server, { serverCertificateHashes: [] });
    await assert.rejects(within(5000, client.ready, 'ready'), { code: 'ERR_QUIC_CERTIFICATE' });
  });

  test('echo still works on the same server afterwards', async () => {
    const { client, session } = await connectPair(server);
    echo(session);
    assert.equal(await echoText(client, 'still fine'), 'still fine');
    client.close();
  });
});
