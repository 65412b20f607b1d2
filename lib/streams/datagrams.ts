/**
 * `transport.datagrams`: QUIC DATAGRAM frames (RFC 9221) shaped like the W3C
 * `WebTransportDatagramDuplexStream` (https://w3c.github.io/webtransport/#duplex-stream).
 *
 * Incoming: every turn the pump moves what quiche received into a queue here (one native call
 * per batch). The queue holds at most `incomingMaxBufferedDatagrams`; a datagram arriving at a
 * full queue drops the oldest, and one older than `incomingMaxAge` when read is dropped: both
 * are counted in `getStats().datagrams`.
 *
 * Outgoing: `write()` copies the datagram into a queue ordered by `sendOrder` (higher first,
 * then first come first served) and resolves at once while the queue has fewer than
 * `outgoingMaxBufferedDatagrams`; otherwise when that datagram leaves the queue. At each flush
 * the queue feeds quiche's small send queue; a datagram older than `outgoingMaxAge` by then is
 * dropped. A datagram larger than `maxDatagramSize` is dropped, and its write resolves, as the
 * W3C spec says: datagrams are unreliable, and a write is no promise of delivery.
 */
import type { Endpoint, FlushHook } from '../endpoint.js';
import { channels } from '../diagnostics.js';
import { QuicTransportError } from '../errors.js';
import { maxAge, queueLimit, type ResolvedDatagrams } from '../options.js';
import { validSendOrder } from './send-stream.js';

/** What the datagram stream needs from its session. */
export interface DatagramHost {
  readonly endpoint: Endpoint | undefined;
  readonly handle: number;
  /** The handshake is complete and the session is not closed. */
  readonly connected: boolean;
  /** The session, for diagnostics payloads. */
  readonly session: object;
}

/** Datagram counters, as in W3C `WebTransportDatagramStats` plus the size drops. */
export interface QuicDatagramStats {
  /** Received datagrams dropped because the incoming queue was full. */
  droppedIncoming: number;
  /** Received datagrams dropped because they waited longer than `incomingMaxAge`. */
  expiredIncoming: number;
  /** Queued datagrams dropped because they waited longer than `outgoingMaxAge`. */
  expiredOutgoing: number;
  /** Sent datagrams in packets that QUIC declared lost. */
  lostOutgoing: number;
  /** Written datagrams dropped because they were larger than `maxDatagramSize`. */
  tooLargeOutgoing: number;
}

/** Options of `createWritable()`. */
export interface QuicDatagramsWritableOptions {
  /** Higher is sent first; equal values are sent in write order. Default 0. */
  sendOrder?: number;
}

interface Outgoing {
  data: Uint8Array;
  at: number;
  /** Set when the write waits for this datagram to leave the queue. */
  settle?: { resolve: () => void; reject: (e: unknown) => void };
}

/** A FIFO with O(1) shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  *drain(): Generator<T> {
    while (this.length > 0) yield this.shift() as T;
  }
}

/** Shared by every session: reads are synchronous. Fits any datagram (UDP payloads are < 64 KiB). */
const RECV_BUFFER = new Uint8Array(256 * 1024);
/** The lengths of the datagrams a `dgramRecv` moved; its last entry, how many quiche dropped. */
const RECV_LENGTHS = new Uint32Array(256 + 1);
const NATIVE_DROPS = 256;

/** A writable for datagrams with its own `sendOrder`. */
export class QuicDatagramsWritable extends WritableStream<Uint8Array> {
  #sendOrder: number;

  /** @internal */
  constructor(sink: UnderlyingSink<Uint8Array>, sendOrder: number) {
    super(sink);
    this.#sendOrder = sendOrder;
  }

  /** Datagrams written here go before queued ones of a lower `sendOrder`. */
  get sendOrder(): number {
    return this.#sendOrder;
  }

  set sendOrder(v: number) {
    this.#sendOrder = validSendOrder(v);
  }
}

export class QuicDatagramDuplexStream implements FlushHook {
  readonly #host: DatagramHost;
  readonly #enabled: boolean;
  #incomingMax: number;
  #outgoingMax: number;
  #incomingMaxAge: number | null;
  #outgoingMaxAge: number | null;
  readonly #incoming = new Fifo<{ data: Uint8Array; at: number }>();
  /** Outgoing queues by sendOrder, and their keys from highest to lowest. */
  readonly #outgoing = new Map<number, Fifo<Outgoing>>();
  #orders: number[] = [];
  #outgoingCount = 0;
  readonly #writables = new Set<WritableStreamDefaultController>();
  #writable: QuicDatagramsWritable | undefined;
  /** Built on first use: an idle session should not carry a stream nobody reads. */
  #readable: ReadableStream<Uint8Array> | undefined;
  #reader: ReadableStreamDefaultController<Uint8Array> | undefined;
  #pull: (() => void) | undefined;
  #cancelled = false;
  #ended: QuicTransportError | undefined;
  #endedCleanly = false;
  /** quiche's send queue was full: a DATAGRAMS_WRITABLE event resumes the flush. */
  #blocked = false;
  readonly #counts = { droppedIncoming: 0, expiredIncoming: 0, expiredOutgoing: 0, tooLargeOutgoing: 0 };

  /** @internal */
  constructor(host: DatagramHost, options: ResolvedDatagrams) {
    this.#host = host;
    this.#enabled = options.enabled;
    this.#incomingMax = options.incomingMaxBufferedDatagrams;
    this.#outgoingMax = options.outgoingMaxBufferedDatagrams;
    this.#incomingMaxAge = options.incomingMaxAge;
    this.#outgoingMaxAge = options.outgoingMaxAge;
  }

  /** Received datagrams, one `Uint8Array` each. */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.#reader = c;
          if (this.#ended) this.#closeReadable();
        },
        pull: () => (this.#deliver() ? undefined : new Promise<void>((resolve) => (this.#pull = resolve))),
        cancel: () => {
          this.#cancelled = true;
          this.#incoming.clear();
        },
      },
      { highWaterMark: 0 },
    );
    return this.#readable;
  }

  /**
   * The largest datagram that fits one packet on the current path, as the peer allows. 0 before
   * the handshake completes, after the session ends, or when either side disabled datagrams.
   */
  get maxDatagramSize(): number {
    const { endpoint, handle, connected } = this.#host;
    if (!this.#enabled || !connected || !endpoint) return 0;
    return endpoint.native.dgramMaxSize(handle);
  }

  /** A writable for datagrams of one `sendOrder`. */
  createWritable(options?: QuicDatagramsWritableOptions): QuicDatagramsWritable {
    if (options !== undefined && (typeof options !== 'object' || options === null))
      throw new TypeError('createWritable() options must be an object');
    const sendOrder = validSendOrder(options?.sendOrder);
    if (this.#ended) throw this.#ended;
    return this.#makeWritable(sendOrder);
  }

  /**
   * A writable with `sendOrder` 0, made on first use (W3C's `writable` attribute). After the
   * session has ended it is an errored writable rather than a throwing getter.
   */
  get writable(): QuicDatagramsWritable {
    this.#writable ??= this.#makeWritable(0);
    return this.#writable;
  }

  #makeWritable(sendOrder: number): QuicDatagramsWritable {
    let controller!: WritableStreamDefaultController;
    const writable: QuicDatagramsWritable = new QuicDatagramsWritable(
      {
        start: (c) => {
          controller = c;
          if (this.#ended) c.error(this.#ended);
          else this.#writables.add(c);
        },
        write: (chunk) => this.#write(chunk, writable.sendOrder),
        close: () => void this.#writables.delete(controller),
        abort: () => void this.#writables.delete(controller),
      },
      sendOrder,
    );
    return writable;
  }

  /** Milliseconds a received datagram may wait to be read; `null`: no limit. */
  get incomingMaxAge(): number | null {
    return this.#incomingMaxAge;
  }

  set incomingMaxAge(v: number | null) {
    this.#incomingMaxAge = maxAge(v, 'incomingMaxAge');
  }

  /** Milliseconds a written datagram may wait to be sent; `null`: no limit. */
  get outgoingMaxAge(): number | null {
    return this.#outgoingMaxAge;
  }

  set outgoingMaxAge(v: number | null) {
    this.#outgoingMaxAge = maxAge(v, 'outgoingMaxAge');
  }

  /** Received datagrams kept for the reader; a datagram arriving at a full queue drops the oldest. */
  get incomingMaxBufferedDatagrams(): number {
    return this.#incomingMax;
  }

  set incomingMaxBufferedDatagrams(v: number) {
    this.#incomingMax = queueLimit(v, 'incomingMaxBufferedDatagrams');
    this.#trimIncoming(0);
  }

  /** Datagrams queued to send before `write()` waits. */
  get outgoingMaxBufferedDatagrams(): number {
    return this.#outgoingMax;
  }

  set outgoingMaxBufferedDatagrams(v: number) {
    this.#outgoingMax = queueLimit(v, 'outgoingMaxBufferedDatagrams');
  }

  /** The older W3C name of `incomingMaxBufferedDatagrams`. */
  get incomingHighWaterMark(): number {
    return this.incomingMaxBufferedDatagrams;
  }

  set incomingHighWaterMark(v: number) {
    this.incomingMaxBufferedDatagrams = v;
  }

  /** The older W3C name of `outgoingMaxBufferedDatagrams`. */
  get outgoingHighWaterMark(): number {
    return this.outgoingMaxBufferedDatagrams;
  }

  set outgoingHighWaterMark(v: number) {
    this.outgoingMaxBufferedDatagrams = v;
  }

  /** @internal The session's counters (the native ones are added by the session). */
  get counts(): Readonly<Omit<QuicDatagramStats, 'lostOutgoing'>> {
    return this.#counts;
  }

  /** @internal Whether datagrams wait for quiche's congestion window. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** @internal quiche has received datagrams: move them here. */
  onDatagrams(): void {
    const { endpoint, handle } = this.#host;
    if (!endpoint) return;
    const now = performance.now();
    for (;;) {
      const n = endpoint.native.dgramRecv(handle, RECV_BUFFER, RECV_LENGTHS);
      // More arrived in one turn than quiche's own queue holds (the stats count these too).
      if (RECV_LENGTHS[NATIVE_DROPS] > 0) this.#published('incoming', 'queue-full', RECV_LENGTHS[NATIVE_DROPS]);
      let off = 0;
      const keep = !this.#cancelled && !this.#ended;
      for (let i = 0; i < n && keep; i++) {
        const len = RECV_LENGTHS[i];
        this.#trimIncoming(1);
        this.#incoming.push({ data: RECV_BUFFER.slice(off, off + len), at: now });
        off += len;
      }
      // Until quiche has none left: a batch also ends when the buffer is full.
      if (n === 0) break;
    }
    if (this.#pull && this.#deliver()) {
      const resolve = this.#pull;
      this.#pull = undefined;
      resolve();
    }
  }

  /** @internal quiche's send queue has room again. */
  onWritable(): void {
    this.#blocked = false;
    this.#schedule();
  }

  /** @internal The handshake completed: send what was written before. */
  onConnected(): void {
    this.#schedule();
  }

  /** Feeds quiche's send queue from ours, at the start of a flush. */
  beforeFlush(): void {
    const { endpoint, handle, connected } = this.#host;
    if (!endpoint || !connected || this.#blocked) return;
    const now = performance.now();
    let expired = 0;
    let tooLarge = 0;
    while (this.#outgoingCount > 0) {
      const order = this.#orders[0];
      const queue = this.#outgoing.get(order) as Fifo<Outgoing>;
      const d = queue.peek() as Outgoing;
      const stale = this.#outgoingMaxAge !== null && now - d.at > this.#outgoingMaxAge;
      if (!stale) {
        const r = endpoint.native.dgramSend(handle, d.data);
        if (r === -1) {
          this.#blocked = true;
          break;
        }
        // -2: larger than the path allows now; -3: the peer takes no datagrams.
        if (r < 0) tooLarge++;
      } else {
        expired++;
      }
      queue.shift();
      if (queue.length === 0) {
        this.#outgoing.delete(order);
        this.#orders.shift();
      }
      this.#outgoingCount--;
      d.settle?.resolve();
    }
    this.#counts.expiredOutgoing += expired;
    this.#counts.tooLargeOutgoing += tooLarge;
    if (expired > 0) this.#published('outgoing', 'expired', expired);
    if (tooLarge > 0) this.#published('outgoing', 'too-large', tooLarge);
  }

  /** @internal The session ended: a clean end closes the readable, every end errors the writables. */
  end(error: QuicTransportError, clean: boolean): void {
    if (this.#ended) return;
    this.#ended = error;
    this.#endedCleanly = clean;
    this.#incoming.clear();
    this.#closeReadable();
    this.#pull?.();
    this.#pull = undefined;
    for (const c of this.#writables) c.error(error);
    this.#writables.clear();
    for (const queue of this.#outgoing.values()) for (const d of queue.drain()) d.settle?.reject(error);
    this.#outgoing.clear();
    this.#orders = [];
    this.#outgoingCount = 0;
  }

  #closeReadable(): void {
    try {
      if (this.#endedCleanly) this.#reader?.close();
      else this.#reader?.error(this.#ended);
    } catch {
      // Already cancelled by the user.
    }
  }

  #write(chunk: Uint8Array, sendOrder: number): Promise<void> | undefined {
    if (!ArrayBuffer.isView(chunk))
      throw new TypeError(`datagrams must be Uint8Array (or another ArrayBufferView), got ${typeof chunk}`);
    if (this.#ended) throw this.#ended;
    if (!this.#enabled)
      throw new QuicTransportError('datagrams are disabled on this session (options.datagrams is false)', {
        code: 'ERR_QUIC_DATAGRAMS_DISABLED',
      });
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#host.connected && bytes.length > this.maxDatagramSize) {
      this.#counts.tooLargeOutgoing++;
      this.#published('outgoing', 'too-large', 1);
      return undefined;
    }
    const d: Outgoing = { data: bytes.slice(), at: performance.now() };
    let queue = this.#outgoing.get(sendOrder);
    if (!queue) {
      queue = new Fifo();
      this.#outgoing.set(sendOrder, queue);
      this.#orders.push(sendOrder);
      this.#orders.sort((a, b) => b - a);
    }
    queue.push(d);
    const wait = this.#outgoingCount >= this.#outgoingMax;
    this.#outgoingCount++;
    this.#schedule();
    if (!wait) return undefined;
    return new Promise((resolve, reject) => (d.settle = { resolve, reject }));
  }

  #schedule(): void {
    if (this.#outgoingCount > 0 && this.#host.connected) this.#host.endpoint?.beforeNextFlush(this);
  }

  /** Makes room for `incoming` more datagrams by dropping the oldest. */
  #trimIncoming(incoming: number): void {
    let dropped = 0;
    while (this.#incoming.length > 0 && this.#incoming.length + incoming > this.#incomingMax) {
      this.#incoming.shift();
      dropped++;
    }
    if (dropped === 0) return;
    this.#counts.droppedIncoming += dropped;
    this.#published('incoming', 'queue-full', dropped);
  }

  /** Hands the oldest fresh datagram to the reader. Returns false when there is none. */
  #deliver(): boolean {
    const now = performance.now();
    let expired = 0;
    let delivered = false;
    while (this.#incoming.length > 0) {
      const d = this.#incoming.shift() as { data: Uint8Array; at: number };
      if (this.#incomingMaxAge !== null && now - d.at > this.#incomingMaxAge) {
        expired++;
        continue;
      }
      this.#reader?.enqueue(d.data);
      delivered = true;
      break;
    }
    if (expired > 0) {
      this.#counts.expiredIncoming += expired;
      this.#published('incoming', 'expired', expired);
    }
    return delivered;
  }

  #published(direction: 'incoming' | 'outgoing', reason: string, count: number): void {
    if (channels.datagramDrop.hasSubscribers)
      channels.datagramDrop.publish({ session: this.#host.session, direction, reason, count });
  }
}
