/**
 * `node:diagnostics_channel` events: what one connection, one stream, a reset, a refusal and a
 * dropped datagram publish, with which payloads.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer } from '../../lib/index.js';
import { connectConfirmed } from '../helpers/confirm.js';
import {
  connect,
  echo,
  echoText,
  nextIncoming,
  readAll,
  startServer,
  within,
  writeUntilError,
} from '../helpers/pair.js';
import { until } from '../helpers/poll.js';

const CHANNELS = [
  'quichex:session:open',
  'quichex:session:handshake',
  'quichex:session:close',
  'quichex:stream:open',
  'quichex:stream:close',
  'quichex:stream:reset',
  'quichex:datagram:drop',
  'quichex:server:accept',
  'quichex:server:reject',
] as const;

type Channel = (typeof CHANNELS)[number];
type Message = Record<string, unknown>;

/** Everything published on the quichex channels while subscribed, in order. */
class Recorder {
  readonly events: { channel: Channel; message: Message }[] = [];
  readonly #handlers = new Map<Channel, (message: unknown) => void>();

  subscribe(): void {
    for (const channel of CHANNELS) {
      const handler = (message: unknown) => this.events.push({ channel, message: message as Message });
      this.#handlers.set(channel, handler);
      diagnostics.subscribe(channel, handler);
    }
  }

  unsubscribe(): void {
    for (const [channel, handler] of this.#handlers) diagnostics.unsubscribe(channel, handler);
    this.#handlers.clear();
  }

  /** Messages on `channel` about `session` (or every message on it). */
  of(channel: Channel, session?: object): Message[] {
    return this.events
      .filter((e) => e.channel === channel && (session === undefined || e.message.session === session))
      .map((e) => e.message);
  }
}

describe('diagnostics channels', () => {
  let server: QuicServer;
  let recorder: Recorder;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());
  beforeEach(() => {
    recorder = new Recorder();
    recorder.subscribe();
  });
  afterEach(() => recorder.unsubscribe());

  test('a connection, one echoed stream and a close publish the session and stream events', async () => {
    const client = connect(server);
    const [session] = await within(5000, Promise.all([server.accept(), client.ready]), 'handshake');
    assert.ok(session);
    echo(session);
    assert.equal(await echoText(client, 'observed'), 'observed');
    client.close({ closeCode: 4, reason: 'seen' });
    await within(5000, session.closed, 'server side closed');

    assert.deepEqual(recorder.of('quichex:session:open', client), [{ session: client, side: 'client' }]);
    assert.deepEqual(recorder.of('quichex:session:open', session), [{ session, side: 'server' }]);
    for (const [who, side] of [
      [client, 'client'],
      [session, 'server'],
    ] as const) {
      const [handshake, ...more] = recorder.of('quichex:session:handshake', who);
      assert.equal(more.length, 0);
      assert.equal(handshake.side, side);
      assert.equal(handshake.protocol, 'test');
      assert.ok(typeof handshake.durationMs === 'number' && handshake.durationMs >= 0, String(handshake.durationMs));
      assert.ok((handshake.durationMs as number) < 5000);
      assert.deepEqual(recorder.of('quichex:session:close', who), [
        { session: who, side, closeInfo: { closeCode: 4, reason: 'seen' } },
      ]);
    }
    assert.deepEqual(recorder.of('quichex:stream:open', client), [
      { session: client, streamId: 0, bidirectional: true, initiator: 'local' },
    ]);
    assert.deepEqual(recorder.of('quichex:stream:open', session), [
      { session, streamId: 0, bidirectional: true, initiator: 'remote' },
    ]);
    assert.deepEqual(recorder.of('quichex:stream:close', client), [{ session: client, streamId: 0 }]);
    assert.deepEqual(recorder.of('quichex:stream:close', session), [{ session, streamId: 0 }]);
    assert.deepEqual(recorder.of('quichex:server:accept'), [{ server, session }]);
    assert.deepEqual(recorder.of('quichex:stream:reset'), []);
    assert.deepEqual(recorder.of('quichex:server:reject'), []);
    assert.deepEqual(recorder.of('quichex:datagram:drop'), []);

    // Order: open before handshake before close, for each side; streams inside the session.
    const names = recorder.events.filter((e) => e.message.session === client).map((e) => e.channel);
    assert.deepEqual(names, [
      'quichex:session:open',
      'quichex:session:handshake',
      'quichex:stream:open',
      'quichex:stream:close',
      'quichex:session:close',
    ]);
  });

  test('a failed session publishes session:close with the error', async () => {
    const client = connect(server, { signal: AbortSignal.abort() });
    await assert.rejects(client.closed);
    const [close] = recorder.of('quichex:session:close', client);
    assert.equal(close.side, 'client');
    assert.ok(close.error instanceof QuicTransportError);
    assert.equal(close.error.code, 'ERR_QUIC_ABORTED');
    assert.equal('closeInfo' in close, false);
    assert.deepEqual(recorder.of('quichex:session:handshake', client), []);
  });

  test('server- and unidirectional streams carry their id, kind and initiator', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      // connectConfirmed opened the server's uni stream 3.
      assert.deepEqual(recorder.of('quichex:stream:open', session), [
        { session, streamId: 3, bidirectional: false, initiator: 'local' },
      ]);
      assert.deepEqual(recorder.of('quichex:stream:open', client), [
        { session: client, streamId: 3, bidirectional: false, initiator: 'remote' },
      ]);
      const { writable } = await session.createBidirectionalStream();
      const writer = writable.getWriter();
      await writer.write(new Uint8Array([1]));
      await nextIncoming(client.incomingBidirectionalStreams);
      assert.deepEqual(recorder.of('quichex:stream:open', client).at(-1), {
        session: client,
        streamId: 1,
        bidirectional: true,
        initiator: 'remote',
      });
      const uni = await client.createUnidirectionalStream();
      assert.deepEqual(recorder.of('quichex:stream:open', client).at(-1), {
        session: client,
        streamId: 2,
        bidirectional: false,
        initiator: 'local',
      });
      await uni.close();
    } finally {
      client.close();
    }
  });

  test('a reset publishes stream:reset on both ends', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const writable = await client.createUnidirectionalStream();
      const writer = writable.getWriter();
      await writer.write(new Uint8Array([1, 2, 3]));
      const readable = await nextIncoming(session.incomingUnidirectionalStreams);
      const reading = readAll(readable).then(
        () => null,
        (e: unknown) => e,
      );
      await writer.abort(new QuicTransportError('stop', { streamErrorCode: 7 }));
      const error = await within(5000, reading, 'reset arrives');
      assert.ok(error instanceof QuicTransportError && error.code === 'ERR_QUIC_STREAM_RESET', String(error));

      const [sent, ...moreSent] = recorder.of('quichex:stream:reset', client);
      assert.equal(moreSent.length, 0);
      assert.deepEqual(
        { ...sent, code: Number(sent.code) },
        {
          session: client,
          streamId: 2,
          direction: 'send',
          by: 'local',
          code: 7,
        },
      );
      const [received, ...moreReceived] = recorder.of('quichex:stream:reset', session);
      assert.equal(moreReceived.length, 0);
      assert.deepEqual(
        { ...received, code: Number(received.code) },
        {
          session,
          streamId: 2,
          direction: 'receive',
          by: 'peer',
          code: 7,
        },
      );
      // A reset stream is finished on both ends.
      assert.ok(recorder.of('quichex:stream:close', client).some((m) => m.streamId === 2));
      await until(1000, () => recorder.of('quichex:stream:close', session).some((m) => m.streamId === 2), 'close');
    } finally {
      client.close();
    }
  });

  test('STOP_SENDING publishes stream:reset receive/local on the reader and send/peer on the writer', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const { writable } = await client.createBidirectionalStream();
      const writer = writable.getWriter();
      await writer.write(new Uint8Array([1]));
      const theirs = await nextIncoming(session.incomingBidirectionalStreams);
      await theirs.readable.cancel(new QuicTransportError('enough', { streamErrorCode: 9 }));
      const [local] = recorder.of('quichex:stream:reset', session);
      assert.deepEqual(
        { ...local, code: Number(local.code) },
        {
          session,
          streamId: 0,
          direction: 'receive',
          by: 'local',
          code: 9,
        },
      );
      const error = await writeUntilError(writer, 'stop sending arrives');
      assert.ok(error instanceof QuicTransportError && error.code === 'ERR_QUIC_STREAM_STOPPED', String(error));
      const [peer] = recorder.of('quichex:stream:reset', client);
      assert.deepEqual(
        { ...peer, code: Number(peer.code) },
        {
          session: client,
          streamId: 0,
          direction: 'send',
          by: 'peer',
          code: 9,
        },
      );
    } finally {
      client.close();
    }
  });

  test('a datagram larger than maxDatagramSize publishes datagram:drop', async () => {
    const { client } = await connectConfirmed(server);
    try {
      const size = client.datagrams.maxDatagramSize;
      assert.ok(size > 0);
      const writer = client.datagrams.writable.getWriter();
      await writer.write(new Uint8Array(size + 1));
      assert.deepEqual(recorder.of('quichex:datagram:drop', client), [
        { session: client, direction: 'outgoing', reason: 'too-large', count: 1 },
      ]);
    } finally {
      client.close();
    }
  });

  test('a refused connection publishes server:reject with the remote address', async () => {
    const full = await startServer({ maxConnections: 1 });
    try {
      const { client: first } = await connectConfirmed(full);
      const second = connect(full, { handshakeTimeout: 3000 });
      try {
        await assert.rejects(within(5000, second.ready, 'refusal'), { code: 'ERR_QUIC_CONNECTION_REFUSED' });
        const rejects = recorder.of('quichex:server:reject');
        assert.equal(rejects.length, 1);
        const [reject] = rejects;
        assert.equal(reject.server, full);
        assert.equal(reject.reason, 'max-connections');
        assert.deepEqual(reject.remoteAddress, {
          address: '127.0.0.1',
          port: second.localAddress?.port,
          family: 'IPv4',
        });
        // Refused connections are not sessions: no session:open on the server for it.
        assert.equal(recorder.of('quichex:session:open').filter((m) => m.side === 'server').length, 1);
      } finally {
        first.close();
        second.close();
      }
    } finally {
      await full.close();
    }
  });

  test('nothing is published after unsubscribing', async () => {
    recorder.unsubscribe();
    const { client } = await connectConfirmed(server);
    client.close();
    assert.deepEqual(recorder.events, []);
  });
});

describe('a session:open subscriber that closes a server session at once', () => {
  let server: QuicServer;
  const refuse = ({ session, side }: { session: { close(info?: object): void }; side: string }): void => {
    if (side === 'server') session.close({ closeCode: 9, reason: 'no' });
  };
  before(async () => {
    server = await startServer({ maxIdleTimeout: 5000 });
    diagnostics.subscribe('quichex:session:open', refuse as (message: unknown) => void);
  });
  after(async () => {
    diagnostics.unsubscribe('quichex:session:open', refuse as (message: unknown) => void);
    await server.close();
  });

  test('closes the connection, and the client hears of it', async () => {
    const client = connect(server, { maxIdleTimeout: 5000 });
    // Well before the idle timeout, which is how the client would otherwise learn of it.
    await within(
      2000,
      client.closed.catch(() => {}),
      'client closed',
    );
  });
});
