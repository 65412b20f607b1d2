/**
 * Transport controls: pacing, initialRtt, keep-alive, datagram queues, congestion control,
 * GREASE, migration, and the key log and qlog files. Each is validated (TypeError/RangeError
 * naming it) and each accepted value gives a working connection.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  QuicServer,
  QuicTransport,
  QuicTransportError,
  type QuicServerOptions,
  type QuicTransportOptions,
} from '../../lib/index.js';
import { assertThrowsNaming, type ErrorClass } from '../helpers/assertions.js';
import { connectConfirmed } from '../helpers/confirm.js';
import { echo, echoText, readAll, startServer, within } from '../helpers/pair.js';
import { isPending, until } from '../helpers/poll.js';

/** Nothing is contacted at this URL: every construction below throws first. */
const NOWHERE = 'quic://127.0.0.1:4433';

function assertThrowsOption(fn: () => unknown, Class: ErrorClass, name: string): void {
  assertThrowsNaming(fn, Class, `options.${name}`);
}

const SIDES = [
  ['client', (o: unknown) => () => new QuicTransport(NOWHERE, o as QuicTransportOptions)],
  ['server', (o: unknown) => () => new QuicServer(o as QuicServerOptions)],
] as const;

describe('transport controls: validation', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'quichex-controls-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [side, make] of SIDES) {
    test(`${side}: pacing is a boolean`, () => {
      for (const bad of ['true', 1, null, {}]) assertThrowsOption(make({ pacing: bad }), TypeError, 'pacing');
    });

    test(`${side}: initialRtt is an integer 1…60000 ms`, () => {
      for (const bad of ['100', 1.5, null, true])
        assertThrowsOption(make({ initialRtt: bad }), TypeError, 'initialRtt');
      for (const bad of [0, -1, 60_001]) assertThrowsOption(make({ initialRtt: bad }), RangeError, 'initialRtt');
    });

    test(`${side}: keepAliveInterval is an integer, shorter than maxIdleTimeout`, () => {
      for (const bad of ['100', 0.5, null])
        assertThrowsOption(make({ keepAliveInterval: bad }), TypeError, 'keepAliveInterval');
      assertThrowsOption(make({ keepAliveInterval: -1 }), RangeError, 'keepAliveInterval');
      for (const interval of [300, 301]) {
        assertThrowsOption(make({ maxIdleTimeout: 300, keepAliveInterval: interval }), RangeError, 'keepAliveInterval');
      }
      // The default maxIdleTimeout (30 s) applies when none is given.
      assertThrowsOption(make({ keepAliveInterval: 30_000 }), RangeError, 'keepAliveInterval');
    });

    test(`${side}: datagrams is a boolean or an object of valid queue settings`, () => {
      for (const bad of ['yes', 1, null]) assertThrowsOption(make({ datagrams: bad }), TypeError, 'datagrams');
      for (const name of ['incomingMaxBufferedDatagrams', 'outgoingMaxBufferedDatagrams']) {
        for (const bad of ['1', 1.5, null]) {
          assertThrowsOption(make({ datagrams: { [name]: bad } }), TypeError, `datagrams.${name}`);
        }
        for (const bad of [0, -1, 2 ** 31])
          assertThrowsOption(make({ datagrams: { [name]: bad } }), RangeError, `datagrams.${name}`);
      }
      for (const name of ['incomingMaxAge', 'outgoingMaxAge']) {
        for (const bad of ['1', Number.NaN, {}])
          assertThrowsOption(make({ datagrams: { [name]: bad } }), TypeError, `datagrams.${name}`);
        for (const bad of [0, -5])
          assertThrowsOption(make({ datagrams: { [name]: bad } }), RangeError, `datagrams.${name}`);
      }
    });

    test(`${side}: keylog is a non-empty path or false`, () => {
      for (const bad of ['', 5, true, null, {}]) assertThrowsOption(make({ keylog: bad }), TypeError, 'keylog');
    });

    test(`${side}: qlogDir is an existing directory`, () => {
      const file = join(dir, 'not-a-dir');
      writeFileSync(file, '');
      for (const bad of ['', 5, null, join(dir, 'missing'), file])
        assertThrowsOption(make({ qlogDir: bad }), TypeError, 'qlogDir');
    });

    test(`${side}: congestionControl is one of the known names`, () => {
      for (const bad of [1, null]) assertThrowsOption(make({ congestionControl: bad }), TypeError, 'congestionControl');
      // Names an object has from its prototype are no algorithm either.
      for (const bad of ['vegas', 'BBR2', 'bbr', 'toString', 'constructor', '__proto__', 'hasOwnProperty'])
        assertThrowsOption(make({ congestionControl: bad }), RangeError, 'congestionControl');
    });
  }

  test('accepted values construct a server', () => {
    const accepted: QuicServerOptions[] = [
      { pacing: false },
      { initialRtt: 1 },
      { initialRtt: 60_000 },
      { keepAliveInterval: 0 },
      { maxIdleTimeout: 300, keepAliveInterval: 299 },
      // No idle timeout: any interval will do.
      { maxIdleTimeout: 0, keepAliveInterval: 60_000 },
      { datagrams: false },
      { datagrams: {} },
      {
        datagrams: { incomingMaxAge: null, outgoingMaxAge: Number.POSITIVE_INFINITY, incomingMaxBufferedDatagrams: 1 },
      },
      { keylog: false },
      { keylog: join(dir, 'keys.log') },
      { qlogDir: dir },
      ...(['cubic', 'reno', 'bbr2', 'default', 'throughput', 'low-latency'] as const).map((c) => ({
        congestionControl: c,
      })),
    ];
    for (const options of accepted) assert.ok(new QuicServer(options), JSON.stringify(options));
  });
});

describe('transport controls: connections', () => {
  const variants: [string, QuicServerOptions][] = [
    ["congestionControl 'reno'", { congestionControl: 'reno' }],
    ["congestionControl 'bbr2'", { congestionControl: 'bbr2' }],
    ["congestionControl 'low-latency'", { congestionControl: 'low-latency' }],
    ["congestionControl 'throughput'", { congestionControl: 'throughput' }],
    ["congestionControl 'default'", { congestionControl: 'default' }],
    ['pacing false', { pacing: false }],
    ['grease false', { grease: false }],
    ['disableActiveMigration true', { disableActiveMigration: true }],
    ['initialRtt 10', { initialRtt: 10 }],
  ];
  for (const [name, options] of variants) {
    test(`${name} on both sides: a connection echoes 256 KiB`, async () => {
      const server = await startServer(options);
      try {
        const { client, session } = await connectConfirmed(server, options as QuicTransportOptions);
        try {
          echo(session);
          const { readable, writable } = await client.createBidirectionalStream();
          const payload = new Uint8Array(256 * 1024).map((_, i) => i % 251);
          const writing = (async () => {
            const writer = writable.getWriter();
            await writer.write(payload);
            await writer.close();
          })();
          const back = await within(10_000, readAll(readable), 'echo');
          await writing;
          assert.ok(back.equals(payload));
        } finally {
          client.close();
        }
      } finally {
        await server.close();
      }
    });
  }

  test('initialRtt is the RTT assumed before any sample', async () => {
    // A peer that never answers: no RTT sample, so the estimate stays at initialRtt.
    const silent = dgram.createSocket('udp4');
    silent.bind(0, '127.0.0.1');
    await once(silent, 'listening');
    const client = new QuicTransport(`quic://127.0.0.1:${silent.address().port}`, {
      initialRtt: 777,
      dangerouslyAcceptAnyCertificate: true,
    });
    try {
      await until(5000, async () => (await client.getStats()).packetsSent > 0, 'first Initial sent');
      const stats = await client.getStats();
      assert.equal(stats.smoothedRtt, 777);
      assert.equal(stats.minRtt, null);
    } finally {
      client.close();
      silent.close();
    }
  });
});

describe('keepAliveInterval', () => {
  const IDLE = 300;

  /** Connects with each side's options, stays idle for 1 s, then reports what is open and echoes. */
  async function idleFor1s(serverOptions: QuicServerOptions, clientOptions: QuicTransportOptions) {
    const server = await startServer({ maxIdleTimeout: IDLE, ...serverOptions });
    try {
      const { client, session } = await connectConfirmed(server, { maxIdleTimeout: IDLE, ...clientOptions });
      try {
        echo(session);
        await sleep(1000); // The idleness under test.
        assert.equal(await isPending(client.closed), true, 'client still open');
        assert.equal(await isPending(session.closed), true, 'server side still open');
        assert.equal(await within(5000, echoText(client, 'awake'), 'echo'), 'awake');
      } finally {
        client.close();
      }
    } finally {
      await server.close();
    }
  }

  test('keep-alive on both sides keeps an idle session open, and it still works', async () => {
    await idleFor1s({ keepAliveInterval: 100 }, { keepAliveInterval: 100 });
  });

  test('keep-alive on the client alone is enough', async () => {
    await idleFor1s({}, { keepAliveInterval: 100 });
  });

  test('keep-alive on the server alone is enough', async () => {
    await idleFor1s({ keepAliveInterval: 100 }, {});
  });

  test('without keep-alive the same session idles out with ERR_QUIC_IDLE_TIMEOUT', async () => {
    const server = await startServer({ maxIdleTimeout: IDLE });
    try {
      const { client } = await connectConfirmed(server, { maxIdleTimeout: IDLE });
      const error = await within(
        3000,
        client.closed.then(
          () => null,
          (e: unknown) => e,
        ),
        'idle timeout',
      );
      assert.ok(error instanceof QuicTransportError, String(error));
      assert.equal(error.code, 'ERR_QUIC_IDLE_TIMEOUT');
    } finally {
      await server.close();
    }
  });
});

/** The key log labels of a TLS 1.3 handshake (https://www.ietf.org/archive/id/draft-ietf-tls-keylogfile-02.html). */
const LABELS = [
  'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
  'SERVER_HANDSHAKE_TRAFFIC_SECRET',
  'CLIENT_TRAFFIC_SECRET_0',
  'SERVER_TRAFFIC_SECRET_0',
];

/** The lines of a key log file, each checked to be `LABEL <client random> <secret>`. */
function keyLines(path: string): string[] {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  for (const line of lines) assert.match(line, /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{32,}$/);
  return lines;
}

describe('keylog', () => {
  let dir: string;
  let saved: string | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'quichex-keylog-'));
    saved = process.env.SSLKEYLOGFILE;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.SSLKEYLOGFILE;
    else process.env.SSLKEYLOGFILE = saved;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('both sides write the handshake and traffic secrets of the same connection', async () => {
    const serverLog = join(dir, 'server.log');
    const clientLog = join(dir, 'client.log');
    const server = await startServer({ keylog: serverLog });
    try {
      const { client } = await connectConfirmed(server, { keylog: clientLog });
      client.close();
      const ours = keyLines(clientLog);
      const theirs = keyLines(serverLog);
      for (const label of LABELS) {
        assert.ok(
          ours.some((l) => l.startsWith(`${label} `)),
          `client log has ${label}`,
        );
      }
      assert.deepEqual([...theirs].sort(), [...ours].sort(), 'both ends log the same secrets');
      assert.equal(new Set(ours.map((l) => l.split(' ')[1])).size, 1, 'one connection: one client random');
    } finally {
      await server.close();
    }
  });

  test('a second connection appends to the file', async () => {
    const path = join(dir, 'append.log');
    const server = await startServer();
    try {
      for (let i = 0; i < 2; i++) {
        const { client } = await connectConfirmed(server, { keylog: path });
        client.close();
      }
      const randoms = new Set(keyLines(path).map((l) => l.split(' ')[1]));
      assert.equal(randoms.size, 2);
    } finally {
      await server.close();
    }
  });

  test('SSLKEYLOGFILE is used when the option is absent; keylog: false ignores it', async () => {
    const fromEnv = join(dir, 'env.log');
    const ignored = join(dir, 'must-not-exist.log');
    const server = await startServer();
    try {
      // The environment is read with the options, in the constructor (which connectConfirmed
      // calls before its first await).
      process.env.SSLKEYLOGFILE = fromEnv;
      const withEnv = connectConfirmed(server);
      delete process.env.SSLKEYLOGFILE;
      (await withEnv).client.close();
      process.env.SSLKEYLOGFILE = ignored;
      const withoutEnv = connectConfirmed(server, { keylog: false });
      delete process.env.SSLKEYLOGFILE;
      (await withoutEnv).client.close();
      const lines = keyLines(fromEnv);
      for (const label of LABELS)
        assert.ok(
          lines.some((l) => l.startsWith(`${label} `)),
          label,
        );
      assert.equal(existsSync(ignored), false);
    } finally {
      await server.close();
    }
  });

  test('a key log that cannot be opened fails with ERR_QUIC_LOG_FILE', async () => {
    const path = join(dir, 'missing-dir', 'keys.log');
    // The client fails before it sends anything: no server is needed.
    const client = new QuicTransport(NOWHERE, { keylog: path, dangerouslyAcceptAnyCertificate: true });
    await assert.rejects(within(5000, client.ready, 'ready'), { code: 'ERR_QUIC_LOG_FILE' });
    await assert.rejects(client.closed, { code: 'ERR_QUIC_LOG_FILE' });
    const server = new QuicServer({ host: '127.0.0.1', keylog: path });
    await assert.rejects(server.listen(), (e: unknown) => {
      assert.ok(e instanceof QuicTransportError, String(e));
      assert.equal(e.code, 'ERR_QUIC_LOG_FILE', e.message);
      return true;
    });
  });
});

/** The records of a JSON-SEQ (RFC 7464) file. */
function jsonSeq(path: string): Record<string, unknown>[] {
  const text = readFileSync(path, 'utf8');
  assert.equal(text[0], '\x1e', 'JSON-SEQ records start with RS');
  return text
    .split('\x1e')
    .filter((r) => r.trim() !== '')
    .map((r) => JSON.parse(r) as Record<string, unknown>);
}

describe('qlogDir', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'quichex-qlog-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('each side writes <traceId>-<side>.sqlog, complete once the connection is gone', async () => {
    const server = await startServer({ qlogDir: dir });
    let names: string[];
    let traceIds: string[];
    try {
      const { client, session } = await connectConfirmed(server, { qlogDir: dir });
      echo(session);
      assert.equal(await echoText(client, 'logged'), 'logged');
      traceIds = [client.traceId as string, session.traceId as string];
      names = [`${traceIds[0]}-client.sqlog`, `${traceIds[1]}-server.sqlog`];
      client.close();
      await within(5000, session.closed, 'server side closed');
    } finally {
      await server.close();
    }
    // The client's connection is released after its draining period, which flushes its file.
    const records = await until(
      5000,
      () => {
        if (!names.every((n) => existsSync(join(dir, n)))) return null;
        try {
          return names.map((n) => jsonSeq(join(dir, n)));
        } catch {
          return null; // not flushed to a record boundary yet
        }
      },
      'qlog files',
      20,
    );
    assert.deepEqual(readdirSync(dir).sort(), [...names].sort());
    for (const [i, file] of records.entries()) {
      const header = file[0];
      // Older qlog drafts name the format `qlog_format`/`qlog_version`; the current one (which
      // quiche 0.30 writes) `serialization_format`/`file_schema`.
      const format = header.qlog_format ?? header.serialization_format;
      assert.equal(format, 'JSON-SEQ', JSON.stringify(header).slice(0, 200));
      assert.ok('qlog_version' in header || 'file_schema' in header, JSON.stringify(header).slice(0, 200));
      assert.match(JSON.stringify(header), new RegExp(traceIds[i]), 'the header names the connection');
      const events = file.slice(1).map((r) => String(r.name));
      assert.ok(
        events.some((e) => e.endsWith('packet_sent')),
        `${names[i]} logs sent packets`,
      );
      assert.ok(
        events.some((e) => e.endsWith('packet_received')),
        `${names[i]} logs received packets`,
      );
    }
  });
});
