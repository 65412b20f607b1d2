/**
 * `pipeTo` between two quichex streams moves the bytes without the web streams in between
 * (lib/streams/pipe.ts) and must keep every promise of the streams spec's pipe: all bytes in
 * order, backpressure, the FIN (or not: preventClose), errors carried over (preventAbort,
 * preventCancel), the locks. Each test checks it took that path: the runtime's own
 * `ReadableStream.prototype.pipeTo` is not called (or is, with a signal).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer, type QuicTransport } from '../../lib/index.js';
import { connectPair, nextIncoming, outcome, readAll, startServer, within, writeUntilError } from '../helpers/pair.js';

/** Counts calls of the runtime's pipeTo while a test runs. */
function spyOnRuntimePipe(): { calls: number; restore: () => void } {
  const original = ReadableStream.prototype.pipeTo;
  const spy = {
    calls: 0,
    restore: () => {
      ReadableStream.prototype.pipeTo = original;
    },
  };
  ReadableStream.prototype.pipeTo = function (this: ReadableStream, ...args: Parameters<typeof original>) {
    spy.calls++;
    return original.apply(this, args);
  };
  return spy;
}

async function writeAll(writable: WritableStream<Uint8Array>, data: Uint8Array, chunk = 50_000): Promise<void> {
  const writer = writable.getWriter();
  for (let off = 0; off < data.length; off += chunk) await writer.write(data.subarray(off, off + chunk));
  await writer.close();
}

describe('pipeTo between quichex streams', () => {
  let server: QuicServer;
  let client: QuicTransport;
  let session: QuicTransport;
  let spy: ReturnType<typeof spyOnRuntimePipe>;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());
  beforeEach(async () => {
    ({ client, session } = await connectPair(server));
    spy = spyOnRuntimePipe();
  });
  afterEach(() => {
    spy.restore();
    client.close();
  });

  /**
   * A client stream whose `first` bytes reached the server, which pipes it back with `options`;
   * `piped()` is how the pipe ended (null, or its error).
   */
  async function echoPipe(first: Uint8Array, options?: StreamPipeOptions) {
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(first);
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    const piping = outcome(theirs.readable.pipeTo(theirs.writable, options));
    return { readable, writer, theirs, piped: () => within(5000, piping, 'pipe') };
  }

  test('moves every byte in order, then closes the destination at the FIN', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const { readable, writable } = await client.createBidirectionalStream();
    const sending = writeAll(writable, data);
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    const piping = theirs.readable.pipeTo(theirs.writable);
    assert.ok(theirs.readable.locked && theirs.writable.locked, 'both streams are locked while piping');
    const echoed = await within(30_000, readAll(readable), 'echo');
    await within(5000, Promise.all([sending, piping]), 'pipe');
    assert.ok(echoed.equals(data), `echoed ${echoed.length} of ${data.length} bytes, in order`);
    assert.ok(!theirs.readable.locked && !theirs.writable.locked, 'the locks are released');
    assert.equal(spy.calls, 0, 'the runtime pipeTo was not used');
  });

  test('to another stream of the session: a unidirectional stream back to the client', async () => {
    const data = randomBytes(300_000);
    const sending = client.createUnidirectionalStream().then((w) => writeAll(w, data));
    const incoming = await nextIncoming(session.incomingUnidirectionalStreams);
    const piping = incoming.pipeTo(await session.createUnidirectionalStream());
    const back = await nextIncoming(client.incomingUnidirectionalStreams);
    assert.ok((await within(10_000, readAll(back), 'read')).equals(data));
    await within(5000, Promise.all([sending, piping]), 'pipe');
    assert.equal(spy.calls, 0);
  });

  test('between two sessions: a relay from one client to another', async () => {
    const other = await connectPair(server);
    try {
      const data = randomBytes(1024 * 1024);
      const sending = client.createUnidirectionalStream().then((w) => writeAll(w, data));
      const incoming = await nextIncoming(session.incomingUnidirectionalStreams);
      const piping = incoming.pipeTo(await other.session.createUnidirectionalStream());
      const relayed = await nextIncoming(other.client.incomingUnidirectionalStreams);
      assert.ok((await within(10_000, readAll(relayed), 'read')).equals(data));
      await within(5000, Promise.all([sending, piping]), 'pipe');
      assert.equal(spy.calls, 0);
    } finally {
      other.client.close();
    }
  });

  test('backpressure: a destination whose peer does not read stops the source', async () => {
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array(1));
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    void theirs.readable.pipeTo(theirs.writable).catch(() => {});
    // Nobody reads the echo: the pipe must stop reading, and so the client's writes must stall.
    const data = randomBytes(32 * 1024 * 1024);
    let written = 0;
    const chunk = 64 * 1024;
    const stalled = await (async () => {
      while (written < data.length) {
        const write = writer.write(data.subarray(written, written + chunk));
        const done = await Promise.race([write.then(() => true), new Promise((r) => setTimeout(r, 500, false))]);
        written += chunk; // Taken, or queued behind the ones that wait.
        if (!done) return true;
      }
      return false;
    })();
    assert.ok(stalled, `the writer stalled (it wrote ${written} bytes)`);
    assert.ok(written < data.length / 2, `only the windows' worth was taken: ${written} bytes`);
    // Reading now lets everything through, in order.
    const reading = readAll(readable);
    while (written < data.length) {
      await writer.write(data.subarray(written, written + chunk));
      written += chunk;
    }
    await writer.close();
    const echoed = await within(30_000, reading, 'echo');
    assert.ok(echoed.equals(Buffer.concat([Buffer.alloc(1), data])));
    assert.equal(spy.calls, 0);
  });

  test('preventClose leaves the destination open after the FIN', async () => {
    const { readable, writable } = await client.createBidirectionalStream();
    const sending = writeAll(writable, Buffer.from('first '));
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    await within(5000, theirs.readable.pipeTo(theirs.writable, { preventClose: true }), 'pipe');
    await sending;
    const writer = theirs.writable.getWriter();
    await writer.write(Buffer.from('and more'));
    await writer.close();
    assert.equal((await within(5000, readAll(readable), 'read')).toString(), 'first and more');
    assert.equal(spy.calls, 0);
  });

  test("the source's reset aborts the destination with its code, and rejects the pipe", async () => {
    const { readable, writer, piped } = await echoPipe(new Uint8Array([1, 2, 3]));
    const reader = readable.getReader();
    assert.deepEqual([...((await reader.read()).value ?? [])], [1, 2, 3]);
    await writer.abort(new QuicTransportError('stop', { streamErrorCode: 7 }));
    const error = await piped();
    assert.ok(error instanceof QuicTransportError && error.code === 'ERR_QUIC_STREAM_RESET', String(error));
    const seen = await within(5000, outcome(reader.read()), 'reset');
    assert.ok(seen instanceof QuicTransportError, String(seen));
    assert.equal(seen.code, 'ERR_QUIC_STREAM_RESET');
    assert.equal(seen.streamErrorCode, 7, 'the code went through the pipe');
    assert.equal(spy.calls, 0);
  });

  test('preventAbort keeps the destination when the source is reset', async () => {
    const { readable, writer, theirs, piped } = await echoPipe(new Uint8Array([1]), { preventAbort: true });
    await writer.abort(new QuicTransportError('stop', { streamErrorCode: 7 }));
    const error = await piped();
    assert.ok(error instanceof QuicTransportError && error.code === 'ERR_QUIC_STREAM_RESET', String(error));
    const mine = theirs.writable.getWriter();
    await mine.write(new Uint8Array([2]));
    await mine.close();
    assert.deepEqual([...(await within(5000, readAll(readable), 'read'))], [1, 2]);
    assert.equal(spy.calls, 0);
  });

  test("the destination's STOP_SENDING cancels the source with its code", async () => {
    const { readable, writer, piped } = await echoPipe(new Uint8Array([1]));
    await readable.cancel(new QuicTransportError('no thanks', { streamErrorCode: 9 }));
    // The server learns of the STOP_SENDING when the pipe next writes; the client keeps writing
    // until the pipe's cancel comes back to it as STOP_SENDING on its own stream.
    const error = await writeUntilError(writer, 'stop sending');
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 9, 'the code went through the pipe');
    const ended = await piped();
    assert.ok(ended instanceof QuicTransportError && ended.code === 'ERR_QUIC_STREAM_STOPPED', String(ended));
    assert.equal(spy.calls, 0);
  });

  test('the session closing rejects the pipe, and errors both streams with its error, resetting neither', async () => {
    const resets: unknown[] = [];
    const onReset = (message: unknown) => resets.push(message);
    diagnostics.subscribe('quichex:stream:reset', onReset);
    try {
      const { theirs, piped } = await echoPipe(new Uint8Array([1]));
      client.close({ closeCode: 5, reason: 'bye' });
      const error = await piped();
      assert.ok(error instanceof QuicTransportError && error.code === 'ERR_QUIC_SESSION_CLOSED', String(error));
      // The session's end errors the destination, as an abort with that error would have.
      assert.equal(await outcome(theirs.writable.getWriter().closed), error);
      assert.equal(await outcome(theirs.readable.getReader().closed), error);
      // No RESET_STREAM or STOP_SENDING for a connection that is gone.
      assert.deepEqual(resets, []);
    } finally {
      diagnostics.unsubscribe('quichex:stream:reset', onReset);
    }
  });

  test('after a write still in the destination, it is the runtime pipeTo, and the write goes first', async () => {
    const { readable, writable } = await client.createBidirectionalStream();
    const sending = writeAll(writable, Buffer.from('echoed'));
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    const writer = theirs.writable.getWriter();
    const first = writer.write(Buffer.from('first, '));
    writer.releaseLock(); // the write is still the stream's: not settled yet
    const piping = theirs.readable.pipeTo(theirs.writable);
    await within(5000, Promise.all([first, sending, piping]), 'pipe');
    assert.equal((await within(5000, readAll(readable), 'read')).toString(), 'first, echoed');
    assert.equal(spy.calls, 1);
  });

  test('with a signal, or to a stream of another kind, it is the runtime pipeTo', async () => {
    const { readable, writable } = await client.createBidirectionalStream();
    const sending = writeAll(writable, Buffer.from('hello'));
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    await within(5000, theirs.readable.pipeTo(theirs.writable, { signal: new AbortController().signal }), 'pipe');
    await sending;
    assert.equal((await readAll(readable)).toString(), 'hello');
    assert.equal(spy.calls, 1);

    const other = await client.createBidirectionalStream();
    const more = writeAll(other.writable, Buffer.from('to a plain writable'));
    const incoming = await nextIncoming(session.incomingBidirectionalStreams);
    const got: Uint8Array[] = [];
    await within(5000, incoming.readable.pipeTo(new WritableStream({ write: (c) => void got.push(c) })), 'pipe');
    await more;
    assert.equal(Buffer.concat(got).toString(), 'to a plain writable');
    assert.equal(spy.calls, 2);
  });
});
