/**
 * Pacing: quiche's BBR2 sets when each packet may leave, and the binding's `send` keeps a
 * connection's packets until then (less the head start quiche allows, 1–5 ms), reporting that
 * instant as the connection's timer. quiche's CUBIC and Reno release packets as the congestion
 * window allows, and so does BBR2 with `pacing: false`. Driven sans-IO over a path with a round
 * trip worth pacing over: the test holds every datagram DELAY ms before handing it on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ev } from '../../lib/native.js';
import type { QuicServerOptions } from '../../lib/options.js';
import { BATCH, CLIENT, STATUS_TIMER, endpoints, poll, sendOnce, type Endpoint } from '../helpers/sans-io.js';

/** One way, ms: a 40 ms round trip, whose probe timeout (over 100 ms) the test stays under. */
const DELAY = 20;
/** How long the server is watched once it has data to send (no turn starts later). */
const WATCH_MS = 60;
/** The server's unidirectional stream. */
const STREAM = 3;

interface Turn {
  packets: number;
  /** µs until the endpoint's next timer, as `send` reported it. */
  timer: number;
}

/** What one turn of the pump would send: `send` until it hands out less than a full batch. */
function drain(endpoint: Endpoint): { datagrams: Buffer[]; timer: number } {
  const datagrams: Buffer[] = [];
  for (;;) {
    const sent = sendOnce(endpoint);
    datagrams.push(...sent.datagrams);
    if (sent.datagrams.length < BATCH) return { datagrams, timer: sent.meta[STATUS_TIMER] };
  }
}

/**
 * A server with `options` and a client make their handshake over the slow path and let it go
 * quiet; then the server writes more than its congestion window takes, and nothing reaches it
 * any more. Returns the server's turns (about one a millisecond, the first right after the
 * write) over WATCH_MS: without ACKs, only time (the pacer) can let it send after its first turn.
 */
async function turnsWithoutAcks(options: QuicServerOptions): Promise<Turn[]> {
  const { client, server } = endpoints(options);
  const reply = Buffer.alloc(1500);
  const inFlight: { at: number; toServer: boolean; datagrams: Buffer[] }[] = [];
  let serverHandle = -1;
  let established = false;
  const deliver = () => {
    const now = performance.now();
    for (let i = 0; i < inFlight.length;) {
      const { at, toServer, datagrams } = inFlight[i];
      if (at > now) {
        i++;
        continue;
      }
      inFlight.splice(i, 1);
      for (const d of datagrams) {
        if (toServer) server.recv(d, CLIENT.host, CLIENT.port, reply);
        else client.recv(d, null, 0, reply);
      }
    }
    for (const [kind, h] of poll(server)) if (kind === Ev.New) serverHandle = h;
    for (const [kind] of poll(client)) if (kind === Ev.Established) established = true;
  };
  const post = (toServer: boolean, datagrams: Buffer[]) => {
    if (datagrams.length > 0) inFlight.push({ at: performance.now() + DELAY, toServer, datagrams });
  };
  const start = performance.now();
  while (!established || serverHandle < 0 || inFlight.length > 0) {
    assert.ok(performance.now() - start < 10_000, 'the handshake over the slow path completes');
    deliver();
    post(false, drain(server).datagrams);
    post(true, drain(client).datagrams);
    await sleep(1);
  }
  assert.ok(server.streamOpen(serverHandle, STREAM, 127));
  const chunk = Buffer.alloc(64 * 1024);
  while (server.streamSend(serverHandle, STREAM, chunk, false, false) > 0);
  const turns: Turn[] = [];
  const watched = performance.now();
  do {
    server.onTimeout(); // as the pump's timer does: it runs what is due (a pacing release too)
    const { datagrams, timer } = drain(server);
    turns.push({ packets: datagrams.length, timer });
    await sleep(1);
  } while (performance.now() - watched < WATCH_MS);
  return turns;
}

const sending = (turns: Turn[]) => turns.filter((t) => t.packets > 0).length;

test('BBR2 with pacing: with no ACK arriving, packets keep leaving over time, each at its timer', async () => {
  const turns = await turnsWithoutAcks({ congestionControl: 'bbr2' });
  // The window had room for them all at once; the pacer held some back, and time alone (the
  // timer turns: nothing reached the server) let them out. However late a turn comes, the
  // first one, right after the write, cannot have sent what the pacer held.
  assert.ok(sending(turns) >= 2, `turns that sent: ${JSON.stringify(turns)}`);
  // The timer the first turn left is the pacer's (its next release less the head start), not
  // a loss-detection or idle timer: those are over 100 ms away on this path.
  assert.ok(turns[0].packets > 0 && turns[0].timer <= 10_000, `first turn: ${JSON.stringify(turns[0])}`);
});

for (const [name, options] of [
  ['BBR2 with pacing: false', { congestionControl: 'bbr2', pacing: false }],
  ['CUBIC', {}],
] as const) {
  test(`${name}: what the window allows leaves at once, and nothing more until an ACK comes`, async () => {
    const turns = await turnsWithoutAcks(options);
    assert.ok(sending(turns) <= 1, `turns that sent: ${JSON.stringify(turns)}`);
  });
}
