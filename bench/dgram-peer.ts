/**
 * Benchmark worker: the raw `node:dgram` baseline, one role per process. Started by bench/run.ts.
 *   --role sink: counts what arrives and reports it when asked.
 *   --role echo: sends every datagram back to its sender.
 *   --role blast --port <p> --size <bytes>: sends that many bytes as DATAGRAM_SIZE datagrams as
 *     fast as the socket takes them (a bounded number in flight), with no pacing or retransmission.
 *   --role ping --port <p> --iterations <n> --warmup <n>: sequential ECHO_SIZE round trips.
 *   --role ping-many --port <p> --count <n>: n sockets, bound first, then each sends one ping at
 *     once (again every PING_RETRY_MS until answered); reports `echoes`, the concurrency baseline.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { DATAGRAM_SIZE, ECHO_SIZE, SOCKET_BUFFER, now, onControl, report, workerArgs } from './common.js';

const IN_FLIGHT = 64;
/** A ping lost on loopback is sent again after this long, so that one drop cannot stall a run. */
const PING_RETRY_MS = 200;
/** A ping of ping-many not answered within this long counts as failed (as in quic-clients.ts). */
const ECHO_DEADLINE_MS = 10_000;

const args = workerArgs();
const socket = dgram.createSocket('udp4');
socket.bind(0, '127.0.0.1');
await once(socket, 'listening');
sizeBuffers(socket);
/** Set by the sink: answers bench/run.ts's request for the count. */
let onReport: (() => void) | undefined;
/** ping-many's sockets, closed with the main one. */
const many = new Set<dgram.Socket>();
const stopping = onControl(
  () => {
    for (const s of many) s.close();
    return new Promise<void>((resolve) => socket.close(() => resolve()));
  },
  () => onReport?.(),
);

function sink(): void {
  let bytes = 0;
  let packets = 0;
  let last = 0;
  socket.on('message', (msg) => {
    last = now();
    bytes += msg.byteLength;
    packets++;
  });
  onReport = () => report({ type: 'received', bytes, packets, last });
}

async function blast(port: number, size: number): Promise<void> {
  socket.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const payload = Buffer.alloc(DATAGRAM_SIZE, 0x5a);
  const total = Math.ceil(size / DATAGRAM_SIZE);
  const start = now();
  let queued = 0;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    const next = (): void => {
      while (inFlight < IN_FLIGHT && queued < total && !stopping()) {
        const len = Math.min(DATAGRAM_SIZE, size - queued * DATAGRAM_SIZE);
        queued++;
        inFlight++;
        socket.send(payload, 0, len, () => {
          inFlight--;
          if (queued === total && inFlight === 0) resolve();
          else next();
        });
      }
    };
    next();
  });
  report({ type: 'sent', start, bytes: size, packets: total });
}

async function ping(port: number, iterations: number, warmup: number): Promise<void> {
  socket.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const message = Buffer.alloc(ECHO_SIZE, 0x61);
  const samples: number[] = [];
  for (let seq = 0; seq < warmup + iterations; seq++) {
    message.writeUInt32BE(seq, 0);
    const start = now();
    await new Promise<void>((resolve) => {
      const retry = setInterval(() => (stopping() ? clearInterval(retry) : socket.send(message)), PING_RETRY_MS);
      const onMessage = (reply: Buffer) => {
        if (reply.readUInt32BE(0) !== seq) return; // a late answer to an earlier ping
        clearInterval(retry);
        socket.off('message', onMessage);
        resolve();
      };
      socket.on('message', onMessage);
      socket.send(message);
    });
    if (seq >= warmup) samples.push(now() - start);
  }
  report({ type: 'samples', samples });
}

async function pingMany(port: number, count: number): Promise<void> {
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const s = dgram.createSocket('udp4');
      many.add(s);
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      sizeBuffers(s);
      return s;
    }),
  );
  const message = Buffer.alloc(ECHO_SIZE, 0x61);
  const latencies: number[] = [];
  let failed = 0;
  const start = now();
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          const send = () => (stopping() ? undefined : s.send(message, port, '127.0.0.1'));
          const retry = setInterval(send, PING_RETRY_MS);
          const done = (answered: boolean) => {
            clearInterval(retry);
            clearTimeout(deadline);
            if (answered) latencies.push(now() - start);
            else failed++;
            resolve();
          };
          const deadline = setTimeout(() => done(false), ECHO_DEADLINE_MS);
          s.once('message', () => done(true));
          send();
        }),
    ),
  );
  report({ type: 'echoes', answered: latencies.length, failed, latencies });
  for (const s of sockets) s.close();
  many.clear();
}

try {
  await play(args.role);
} catch (e) {
  if (!stopping()) throw e; // Stopped mid-run (a timeout): sends on a closed socket fail.
}

async function play(role: string): Promise<void> {
  switch (role) {
    case 'sink':
      sink();
      report({ type: 'ready', port: socket.address().port });
      break;
    case 'echo':
      socket.on('message', (msg, from) => socket.send(msg, from.port, from.address));
      report({ type: 'ready', port: socket.address().port });
      break;
    case 'blast':
      await blast(Number(args.port), Number(args.size));
      break;
    case 'ping':
      await ping(Number(args.port), Number(args.iterations), Number(args.warmup));
      break;
    case 'ping-many':
      await pingMany(Number(args.port), Number(args.count));
      break;
    default:
      throw new Error(`unknown role ${role}`);
  }
}

/** The socket buffers quichex's own sockets ask for, so that both sides of a ratio have the same. */
function sizeBuffers(s: dgram.Socket): void {
  s.setRecvBufferSize(SOCKET_BUFFER);
  s.setSendBufferSize(SOCKET_BUFFER);
}
