/**
 * The pump: one `node:dgram` socket, one timer and one native endpoint.
 *
 * Every turn, in this order (the native side documents the same contract):
 * 1. a datagram arrives → `native.recv` (a stateless reply goes straight back, and so does a
 *    server's handshake flight once a client's ClientHello is complete);
 *    or the timer fires → `native.onTimeout`;
 * 2. `flush`: poll events and hand each to its connection's owner, then drain every pending
 *    packet into the socket, and repeat while events wait (`send` says how many do);
 * 3. re-arm the timer from the deadline `send` reported — only after draining, because
 *    sending moves the deadlines.
 * Every flush runs on `setImmediate`: a burst of datagrams read in one poll phase is answered in
 * one pass, and everything user code did in the same turn (writes, a close) leaves in the same
 * packets. A flush that handed events to user code sends only once that code's promise
 * reactions have run (see `#flush`), so that its reply carries the ACK.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { QuicTransportError } from './errors.js';
import { Ev, native, type BindingConfig, type BindingEndpoint } from './native.js';

/** What an endpoint needs from the owner of one connection (a session). */
export interface ConnectionOwner {
  onEvent(kind: number, streamId: number): void;
  /** The socket failed (for a client: e.g. ICMP port unreachable, nothing listens). */
  onSocketError?(error: QuicTransportError): void;
}

/** Something to do at the start of the next flush, before packets are built. */
export interface FlushHook {
  beforeFlush(): void;
}

const EVENT_BATCH = 256;
const PACKET_BATCH = 64;
/** Packets sent in one turn of the event loop before the pump yields (about 5.5 MB). */
const MAX_PACKETS_PER_TURN = 4096;
const PEER_CHANGED = 0x8000_0000;
/**
 * The socket buffers asked for. The kernel's default (208 KiB on Linux) overflows while the pump
 * is busy in a bulk transfer, and every datagram dropped there is a loss QUIC must recover from:
 * one stream's throughput rose by a fifth with 2 MiB. Linux caps the size at net.core.rmem_max and
 * wmem_max; the memory is only taken while datagrams wait in it.
 */
const SOCKET_BUFFER = 2 * 1024 * 1024;
const HANDLE_MASK = 0x7fff_ffff;
const SETTLED = Promise.resolve();
/** Where `send` leaves the endpoint's status in `meta`: events waiting, then the timer. */
const STATUS_EVENTS = PACKET_BATCH * 2;
const STATUS_TIMER = STATUS_EVENTS + 1;
/** INTERNAL_ERROR (RFC 9000 §20.1). */
const INTERNAL_ERROR = 0x1n;

/** A send buffer and the number of datagrams in it the socket has not finished with. */
interface SendSlot {
  buf: Buffer;
  pending: number;
  done: (error: Error | null) => void;
}

/** Where a connection's packets go. */
interface Peer {
  host: string;
  port: number;
}

export class Endpoint {
  readonly native: BindingEndpoint;
  readonly #socket: dgram.Socket;
  /** Set when the socket is connected to the one peer of a client endpoint. */
  readonly #connected: boolean;
  readonly #owners = new Map<number, ConnectionOwner>();
  readonly #peers = new Map<number, Peer>();
  readonly #events = new Float64Array(EVENT_BATCH * 3);
  readonly #meta = new Uint32Array(PACKET_BATCH * 2 + native.STATUS_WORDS);
  readonly #reply = Buffer.alloc(1500);
  readonly #free: SendSlot[] = [];
  readonly #slotSize: number;
  readonly #hooks = new Set<FlushHook>();
  #immediate: NodeJS.Immediate | undefined;
  #drainDeferred = false;
  /** A flush is under way and drains before this turn ends: `flushSoon` has nothing to add. */
  #flushing = false;
  /** The last poll saw a connection arrive or end (new, draining, closed). */
  #connectionEvents = false;
  /** A connection was released since the last look at whether the socket can close. */
  #released = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = 0;
  #closing = false;
  #socketClosed = false;
  /** Called with the handle of each connection a server accepts. */
  onAccept: ((handle: number) => ConnectionOwner | undefined) | undefined;
  /** Called with the handle of each connection a server refuses (maxConnections). */
  onRefused: ((handle: number) => void) | undefined;
  readonly local: { address: string; port: number; family: string };
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  private constructor(nativeEndpoint: BindingEndpoint, socket: dgram.Socket, connected: boolean, maxPayload: number) {
    this.native = nativeEndpoint;
    this.#socket = socket;
    this.#connected = connected;
    this.#slotSize = maxPayload * PACKET_BATCH;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    const a = socket.address();
    this.local = { address: a.address, port: a.port, family: a.family };
    nativeEndpoint.setLocalAddress(a.address, a.port);
    socket.on('message', this.#onMessage);
    socket.on('error', this.#onSocketError);
  }

  /**
   * The client endpoint for connections to `peer` with `config`: connections from one process to
   * the same server with the same options share one socket and one TLS context (a socket, its
   * send buffers and a TLS context per connection would cost more than the connection itself).
   */
  static async client(config: BindingConfig, peer: Peer): Promise<Endpoint> {
    const key = `${peer.host} ${peer.port} ${fingerprint(config)}`;
    for (;;) {
      let opening = clientEndpoints.get(key);
      if (!opening) {
        const bind = { host: peer.host.includes(':') ? '::' : '0.0.0.0', port: 0 };
        const created = Endpoint.open(config, bind, peer);
        const forget = () => {
          if (clientEndpoints.get(key) === created) clientEndpoints.delete(key);
        };
        created.then((endpoint) => void endpoint.closed.then(forget), forget);
        clientEndpoints.set(key, created);
        opening = created;
      }
      const endpoint = await opening;
      // It may have closed with its last connection since: then open another.
      if (endpoint.usable) return endpoint;
      if (clientEndpoints.get(key) === opening) clientEndpoints.delete(key);
    }
  }

  /** The socket is open: connections can still be made here. */
  get usable(): boolean {
    return !this.#socketClosed;
  }

  /**
   * Binds a socket and builds the native endpoint. A client endpoint connects its socket to
   * the peer, so that ICMP "port unreachable" surfaces as an error instead of a timeout.
   */
  static async open(config: BindingConfig, bind: { host: string; port: number }, peer?: Peer): Promise<Endpoint> {
    const nativeEndpoint = new native.BindingEndpoint(config);
    const type = bind.host.includes(':') ? 'udp6' : 'udp4';
    // Addresses are always IP literals here: a synchronous lookup keeps sends synchronous.
    const socket = dgram.createSocket({
      type,
      lookup: (host, _opts, cb) => (cb as (e: null, a: string, f: number) => void)(null, host, type === 'udp6' ? 6 : 4),
    });
    try {
      // With a synchronous lookup these events may fire inside the call: listen first.
      const listening = once(socket, 'listening');
      socket.bind({ address: bind.host, port: bind.port, exclusive: true });
      await listening;
      sizeBuffers(socket);
      if (peer) {
        const connected = once(socket, 'connect');
        socket.connect(peer.port, peer.host);
        await connected;
      }
    } catch (cause) {
      socket.close();
      const where = `${bind.host}:${bind.port}`;
      throw new QuicTransportError(`cannot open UDP socket on ${where}: ${(cause as Error).message}`, {
        code: 'ERR_QUIC_SOCKET',
        cause,
      });
    }
    return new Endpoint(nativeEndpoint, socket, peer !== undefined, config.maxUdpPayloadSize);
  }

  /** Registers the owner of a client connection. */
  attach(handle: number, owner: ConnectionOwner): void {
    this.#owners.set(handle, owner);
  }

  /** Flushes once the current turn of the event loop is over. */
  flushSoon(): void {
    if (!this.#flushing) this.#immediate ??= setImmediate(this.#onImmediate);
  }

  /**
   * Sends what is pending before this turn of the event loop ends: after the promise reactions
   * now running (so that what they send shares the packets), before any datagram is read. For a
   * FIN without data, which the binding holds until packets are built (see send-stream.ts).
   */
  sendThisTurn(): void {
    if (this.#socketClosed || this.#drainDeferred) return; // a flush is due in this turn already
    this.#deferDrain();
  }

  /**
   * Drains once the promise reactions now queued have run: a tick queued from a microtask runs
   * once the microtask queue is empty, still in this turn of the event loop. The microtask is a
   * reaction to a settled promise: `queueMicrotask` would also build an async resource for it
   * (about a µs a round trip, each side).
   */
  #deferDrain(): void {
    this.#drainDeferred = true;
    void SETTLED.then(this.#afterReactions);
  }

  /** Runs `hook.beforeFlush()` at the start of the next flush (and flushes soon). */
  beforeNextFlush(hook: FlushHook): void {
    this.#hooks.add(hook);
    this.flushSoon();
  }

  /** Closes the socket once every connection has been released. */
  closeWhenIdle(): void {
    this.#closing = true;
    this.native.stopAccepting();
    this.#closeIfIdle();
  }

  #onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    // Nothing can be sent to port 0 (the socket throws): no peer of ours is there.
    if (rinfo.port === 0) return;
    let reply = 0;
    try {
      // A connected socket hears only from its server: the binding knows that address.
      reply = this.#connected
        ? this.native.recv(msg, null, 0, this.#reply)
        : this.native.recv(msg, rinfo.address, rinfo.port, this.#reply);
    } catch {
      return; // An address the native side cannot parse: nothing a peer could do about it.
    }
    if (reply === native.RECV_ANSWER) {
      // A server's handshake flight leaves now: the client works on it while we read on.
      this.#guarded(() => {
        this.#drain(MAX_PACKETS_PER_TURN, true);
        this.#armTimer();
      });
    } else if (reply > 0) {
      this.#transmit(Buffer.from(this.#reply.subarray(0, reply)), 0, reply, { host: rinfo.address, port: rinfo.port });
    }
    this.flushSoon();
  };

  #onImmediate = (): void => {
    this.#immediate = undefined;
    this.#guarded(this.#flush);
  };

  #afterReactions = (): void => {
    process.nextTick(this.#onDeferred);
  };

  #onDeferred = (): void => {
    this.#guarded(this.#flush);
  };

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#guarded(() => {
      this.native.onTimeout();
      this.#flush();
    });
  };

  /**
   * Runs a turn of the pump. A throw here would be uncaught and end the process; the native
   * side turns its own panics into exceptions, so what reaches this is a bug: report it and
   * keep the endpoint going (the next datagram or timer drives it again).
   */
  #guarded(turn: () => void): void {
    try {
      turn();
    } catch (error) {
      this.#flushing = false;
      process.emitWarning(error as Error, { code: 'QUICHEX_INTERNAL' });
      try {
        this.#armTimer(this.native.timeout());
      } catch {
        // The native endpoint is past saving; its connections will time out on their peers.
      }
    }
  }

  #onSocketError = (err: Error): void => {
    // A client socket is connected to its one server: what fails it fails every connection on it.
    // A server socket's errors concern one peer at most, and QUIC recovers from a lost packet.
    if (!this.#connected) return;
    const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    const e = new QuicTransportError(`UDP socket error: ${err.message}`, {
      code: refused ? 'ERR_QUIC_CONNECTION_REFUSED' : 'ERR_QUIC_SOCKET',
      cause: err,
    });
    // Nothing listens there: a close that waits for the server to answer would wait in vain.
    if (refused) for (const handle of this.#owners.keys()) this.native.abandon(handle);
    for (const owner of [...this.#owners.values()]) owner.onSocketError?.(e);
  };

  #flush = (): void => {
    if (this.#socketClosed) return;
    this.#connectionEvents = false;
    // What the events handed out below ask for (a read frees credit, a write), the drain
    // that ends this flush sends.
    this.#flushing = true;
    // A deferred flush comes after its poll: what happened since, the status of `send` tells.
    const events = this.#drainDeferred ? 0 : this.#pollEvents();
    if (events > 0 && !this.#connectionEvents) {
      // What user code does about stream events and `ready` (read, then write a reply; open a
      // stream and write) runs in the promise reactions after this callback. Draining after
      // them lets the ACK — or a client's Finished, or a server's HANDSHAKE_DONE — ride in the
      // packet of what user code sends instead of a packet of its own. Never after a
      // connection's arrival or end (nothing to coalesce). A client's close asked for before its
      // Finished left is held by the binding until the handshake is confirmed (connection.rs),
      // so deferring the Finished is safe.
      this.#deferDrain();
      return;
    }
    this.#drainDeferred = false;
    // This flush does what a pending one would.
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    let budget = MAX_PACKETS_PER_TURN;
    for (;;) {
      if (this.#hooks.size > 0) {
        for (const hook of this.#hooks) hook.beforeFlush();
        this.#hooks.clear();
      }
      budget -= this.#drain(budget);
      if (budget <= 0) {
        // Let the event loop breathe (take in ACKs, run timers); the next turn goes on. This also
        // bounds a connection that quiche keeps handing packets for without end.
        this.#flushing = false;
        this.flushSoon();
        break;
      }
      // Handling events (a read frees credit, a write finds room) may give quiche more to send.
      if (this.#meta[STATUS_EVENTS] === 0 || this.#pollEvents() === 0) break;
    }
    this.#flushing = false;
    this.#armTimer();
    if (this.#released) this.#closeIfIdle();
  };

  #pollEvents(): number {
    let total = 0;
    for (;;) {
      const n = this.native.pollEvents(this.#events);
      for (let i = 0; i < n; i++) {
        this.#dispatch(this.#events[i * 3], this.#events[i * 3 + 1], this.#events[i * 3 + 2]);
      }
      total += n;
      if (n < EVENT_BATCH) return total;
    }
  }

  #dispatch(kind: number, handle: number, streamId: number): void {
    try {
      this.#deliver(kind, handle, streamId);
    } catch (error) {
      // A bug of ours must not take the process down: fail this one connection, report it.
      process.emitWarning(error as Error, { code: 'QUICHEX_INTERNAL' });
      if (kind !== Ev.Closed) this.native.close(handle, false, INTERNAL_ERROR, Buffer.from('internal error'));
    }
  }

  #deliver(kind: number, handle: number, streamId: number): void {
    if (kind === Ev.New || kind === Ev.Draining || kind === Ev.Closed) this.#connectionEvents = true;
    if (kind === Ev.New) {
      const owner = this.onAccept?.(handle);
      if (owner) this.#owners.set(handle, owner);
      return;
    }
    if (kind === Ev.Refused) {
      this.onRefused?.(handle);
      return;
    }
    try {
      this.#owners.get(handle)?.onEvent(kind, streamId);
    } finally {
      if (kind === Ev.Closed) {
        this.#owners.delete(handle);
        this.#peers.delete(handle);
        this.native.release(handle);
        this.#released = true;
      }
    }
  }

  /**
   * Sends what the native endpoint has, up to about `budget` packets; with `answers`, only the
   * handshake answers `recv` asked for. The last `send` leaves the status in `#meta`.
   */
  #drain(budget: number, answers = false): number {
    let total = 0;
    for (;;) {
      const slot = this.#slot();
      const n = this.native.send(slot.buf, this.#meta, answers);
      let off = 0;
      let changed = 0;
      for (let i = 0; i < n; i++) {
        const len = this.#meta[i * 2];
        const word = this.#meta[i * 2 + 1];
        const handle = word & HANDLE_MASK;
        const peer = this.#connected
          ? undefined
          : (word & PEER_CHANGED) !== 0
            ? this.#changedPeer(handle, changed++)
            : this.peerAddress(handle);
        slot.pending++;
        this.#transmit(slot.buf, off, len, peer, slot.done);
        off += len;
      }
      // With datagrams in it the slot is freed by `done`, once the socket has sent them all.
      if (n === 0) this.#free.push(slot);
      total += n;
      // The buffer holds PACKET_BATCH full-size packets, so `send` stops early only when the
      // meta array is full: fewer packets means nothing is left.
      if (n < PACKET_BATCH || total >= budget) return total;
    }
  }

  #slot(): SendSlot {
    const free = this.#free.pop();
    if (free) return free;
    const slot: SendSlot = {
      buf: Buffer.allocUnsafeSlow(this.#slotSize),
      pending: 0,
      done: (error) => {
        if (--slot.pending === 0) this.#free.push(slot);
        // A connected socket learns of ICMP port unreachable on a later send, too.
        if ((error as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED') this.#onSocketError(error as Error);
      },
    };
    return slot;
  }

  /** Where connection `handle`'s packets go (as the pump last learnt it from the native side). */
  peerAddress(handle: number): Peer {
    let peer = this.#peers.get(handle);
    if (!peer) {
      peer = this.native.peerAddress(handle);
      this.#peers.set(handle, peer);
    }
    return peer;
  }

  /**
   * Where the `i`-th packet of the last `send` that goes elsewhere than its connection's packet
   * before it goes: a probe of a new path and the active path's packets can share a batch.
   */
  #changedPeer(handle: number, i: number): Peer {
    const peer = this.native.batchPeer(i);
    this.#peers.set(handle, peer);
    return peer;
  }

  #transmit(buf: Buffer, off: number, len: number, peer: Peer | undefined, done?: (error: Error | null) => void): void {
    if (this.#socketClosed) return; // Only a stateless reply can get here after close.
    // Datagrams are best effort: a failed send is a lost packet, which QUIC recovers from.
    const cb = done ?? noop;
    try {
      if (peer) this.#socket.send(buf, off, len, peer.port, peer.host, cb);
      else this.#socket.send(buf, off, len, cb);
    } catch {
      cb(null); // A send the socket refused outright is a lost packet, like any other.
    }
  }

  /** Arms the timer for the deadline the last `send` reported, or for `ms` (-1: none). */
  #armTimer(ms = this.#meta[STATUS_TIMER] === native.NO_TIMER ? -1 : this.#meta[STATUS_TIMER] / 1000): void {
    if (ms < 0) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      return;
    }
    const at = performance.now() + ms;
    // The deadline moves with every packet sent and acknowledged. Re-arming each time costs more
    // than waking up early now and then: keep a timer that fires no later than needed (if early,
    // `onTimeout` finds nothing due and the timer is armed again for the real deadline).
    if (this.#timer && this.#timerAt <= at + 1) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.ceil(ms));
  }

  #closeIfIdle(): void {
    this.#released = false;
    if (!this.#closing || this.#socketClosed || this.native.connectionCount > 0) return;
    this.#socketClosed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#socket.close(() => this.#resolveClosed());
  }
}

function noop(): void {}

function sizeBuffers(socket: dgram.Socket): void {
  try {
    socket.setRecvBufferSize(SOCKET_BUFFER);
    socket.setSendBufferSize(SOCKET_BUFFER);
  } catch {
    // A system that refuses the size keeps its default: slower in bulk, not broken.
  }
}

/** Client endpoints by peer and configuration, while they are open. */
const clientEndpoints = new Map<string, Promise<Endpoint>>();

/** A configuration as a string (Buffers serialise by content): equal strings, interchangeable endpoints. */
function fingerprint(config: BindingConfig): string {
  return JSON.stringify(config);
}
