/**
 * The send side of a QUIC stream as a `WritableStream<Uint8Array>`.
 *
 * `write()` settles when quiche has taken the chunk (it may wait for flow-control or congestion
 * credit, which is how a slow peer pushes back on the writer); `close()` sends FIN; `abort(e)`
 * sends RESET_STREAM with `e.streamErrorCode` (0 otherwise).
 *
 * quiche 0.30 can drop a zero-length FIN whose stream data is acknowledged before the FIN is
 * sent (cloudflare/quiche#2525): the peer would then wait for the end of the stream forever. So
 * the binding keeps the last byte of each write until the endpoint's next packets (the end of the
 * event-loop turn), and a `close()` in the same turn sends FIN together with data; a FIN that
 * still comes alone waits in the binding until the packets that carry it are built.
 */
import { QuicTransportError, codeFromWire, streamCodeOf } from '../errors.js';
import { StreamResult } from '../native.js';
import type { Pipe, PipeSink } from './pipe.js';
import { publishReset, type StreamHost, type StreamSide } from './stream-host.js';

const EMPTY = new Uint8Array(0);

/** Counters of a send stream, as in W3C `WebTransportSendStreamStats`. */
export interface QuicSendStreamStats {
  /** Bytes the application wrote that the stream accepted. */
  bytesWritten: number;
  /** Bytes handed to QUIC for sending (quiche reports no per-stream wire progress). */
  bytesSent: number;
  /**
   * Bytes the peer acknowledged: `bytesSent` once every byte and the FIN are acknowledged (quiche
   * reports per-stream acknowledgement only as completion), `null` until then.
   */
  bytesAcknowledged: number | null;
}

/**
 * The quiche urgency (0 most urgent … 255) for a W3C `sendOrder`: quiche's default 127 minus the
 * sendOrder, clamped. Higher sendOrder goes first; -128 … 127 are distinct levels.
 */
export function urgencyOf(sendOrder: number): number {
  return Math.min(255, Math.max(0, 127 - Math.round(sendOrder)));
}

/** A `sendOrder` value, checked. */
export function validSendOrder(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new TypeError(`sendOrder must be a finite number, got ${String(v)}`);
  return v;
}

class SendSink implements UnderlyingSink<ArrayBufferView>, StreamSide, PipeSink {
  readonly #host: StreamHost;
  readonly #id: number;
  #controller!: WritableStreamDefaultController;
  #waiting: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  #bytesWritten = 0;
  #bytesSent = 0;
  #finSent = false;
  #acknowledged = false;
  /** Listening to the controller's abort signal (from the first write that has to wait). */
  #listening = false;
  /** Set while a `pipeTo` from a quichex receive stream writes here (pipe.ts). */
  pipe: Pipe | undefined = undefined;

  constructor(host: StreamHost, id: number) {
    this.#host = host;
    this.#id = id;
  }

  start(controller: WritableStreamDefaultController): void {
    this.#controller = controller;
  }

  write(chunk: ArrayBufferView): Promise<void> | undefined {
    if (!ArrayBuffer.isView(chunk)) {
      throw new TypeError(`stream chunks must be Uint8Array (or another ArrayBufferView), got ${typeof chunk}`);
    }
    const bytes =
      chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length === 0) return undefined;
    return then(this.#push(bytes, false), () => {
      this.#bytesWritten += bytes.length;
    });
  }

  close(): Promise<void> | undefined {
    // A FIN without data waits in the binding for the next packets (see the header): this turn's.
    return then(this.#push(EMPTY, true), () => this.#host.endpoint.sendThisTurn());
  }

  get blocked(): boolean {
    return this.#waiting !== undefined;
  }

  stats(): QuicSendStreamStats {
    const { endpoint, handle } = this.#host;
    if (this.#finSent && !this.#acknowledged && handle >= 0)
      this.#acknowledged = endpoint.native.streamCollected(handle, this.#id);
    return {
      bytesWritten: this.#bytesWritten,
      bytesSent: this.#bytesSent,
      bytesAcknowledged: this.#acknowledged ? this.#bytesSent : null,
    };
  }

  setUrgency(urgency: number): void {
    if (!this.#done && this.#host.handle >= 0)
      this.#host.endpoint.native.streamSetPriority(this.#host.handle, this.#id, urgency);
  }

  abort(reason: unknown): void {
    if (this.#done) return;
    this.#finish();
    const code = streamCodeOf(reason);
    this.#host.endpoint.native.streamShutdown(this.#host.handle, this.#id, true, code);
    publishReset(this.#host, this.#id, 'send', 'local', code);
    this.#host.endpoint.flushSoon();
    this.#waiting?.reject(reason);
    this.#waiting = undefined;
  }

  wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve();
  }

  fail(error: unknown): void {
    if (this.#done) return;
    this.#finish();
    this.#controller.error(error);
    this.#waiting?.reject(error);
    this.#waiting = undefined;
    this.pipe?.destinationErrored(error, false);
  }

  /** Whether a pipe can write here: open and no write waiting for room. */
  get pipeable(): boolean {
    return !this.#done && !this.#waiting;
  }

  error(error: unknown): void {
    this.#controller.error(error);
  }

  get orphaned(): boolean {
    return !this.#host.connected;
  }

  /**
   * Hands `bytes` to quiche, waiting for room as often as needed; a write's last byte is held
   * back by the binding (see the header), a FIN takes it along.
   */
  #push(bytes: Uint8Array, fin: boolean): Promise<void> | undefined {
    const { endpoint, handle } = this.#host;
    let offset = 0;
    const step = (): Promise<void> | undefined => {
      for (;;) {
        if (this.#done)
          throw new QuicTransportError('the stream is closed', { source: 'stream', code: 'ERR_QUIC_STREAM_CLOSED' });
        const rest = offset === 0 ? bytes : bytes.subarray(offset);
        const r = endpoint.native.streamSend(handle, this.#id, rest, fin, !fin);
        endpoint.flushSoon();
        if (r === StreamResult.PeerAborted || r === StreamResult.Gone) throw this.#writeError(r);
        if (r > 0) {
          offset += r;
          this.#bytesSent += r;
        }
        if (offset === bytes.length && r !== StreamResult.Blocked) {
          if (fin) {
            this.#finSent = true;
            this.#finish();
          }
          return undefined;
        }
        if (r === StreamResult.Blocked || r < rest.length) {
          this.#listen();
          return new Promise<void>((resolve, reject) => {
            this.#waiting = { resolve, reject };
          }).then(step);
        }
      }
    };
    return step();
  }

  /**
   * The streams spec calls abort() only after the write in flight settles, which a peer that
   * does not read may never let happen: once a write has to wait, reset at once when abort() is
   * called. (Only then: a listener on every stream's signal would cost more than the rest of
   * setting the stream up.)
   */
  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    const signal = this.#controller.signal;
    signal.addEventListener('abort', () => this.abort(signal.reason), { once: true });
  }

  /** The error of a `streamSend` that found the stream stopped by the peer or gone; ends the side. */
  #writeError(r: number): QuicTransportError {
    let error: QuicTransportError;
    if (r === StreamResult.PeerAborted) {
      const code = codeFromWire(this.#host.endpoint.native.lastCode(this.#host.handle));
      error = new QuicTransportError('the peer stopped reading the stream (STOP_SENDING)', {
        source: 'stream',
        code: 'ERR_QUIC_STREAM_STOPPED',
        streamErrorCode: code,
      });
      publishReset(this.#host, this.#id, 'send', 'peer', code);
    } else {
      error = new QuicTransportError('the stream can no longer be written', {
        source: 'stream',
        code: 'ERR_QUIC_STREAM_CLOSED',
      });
    }
    this.#finish();
    return error;
  }

  #finish(): void {
    this.#done = true;
    this.#host.sideDone(this.#id);
  }
}

/** `fn()` after `step`, without a promise hop when `step` finished synchronously. */
function then(step: Promise<void> | undefined, fn: () => Promise<void> | undefined | void): Promise<void> | undefined {
  return step ? step.then(fn) : (fn() ?? undefined);
}

/** The sink behind `stream` when it is a quichex send stream (for pipes), else undefined. */
export let sendSinkOf: (stream: unknown) => SendSink | undefined;

/** The send side of a stream: a `WritableStream` with `sendOrder` and `getStats()`. */
export class QuicSendStream extends WritableStream<Uint8Array> {
  readonly #sink: SendSink;
  #sendOrder: number;

  /** @internal */
  constructor(sink: SendSink, sendOrder: number) {
    // highWaterMark 1: one chunk queued while quiche works on the one before, as the spec's default.
    super(sink as UnderlyingSink<Uint8Array>);
    this.#sink = sink;
    this.#sendOrder = sendOrder;
  }

  /** Streams with a higher sendOrder are sent first (see `urgencyOf` for the mapping). */
  get sendOrder(): number {
    return this.#sendOrder;
  }

  set sendOrder(v: number) {
    this.#sendOrder = validSendOrder(v);
    this.#sink.setUrgency(urgencyOf(this.#sendOrder));
  }

  /** Counters of this stream. */
  getStats(): Promise<QuicSendStreamStats> {
    return Promise.resolve(this.#sink.stats());
  }

  static {
    sendSinkOf = (stream) =>
      typeof stream === 'object' && stream !== null && #sink in stream ? stream.#sink : undefined;
  }
}

/** The writable for stream `id` (already opened with `sendOrder`'s urgency), and its wake handle. */
export function createSendStream(
  host: StreamHost,
  id: number,
  sendOrder: number,
): { writable: QuicSendStream; side: StreamSide } {
  const sink = new SendSink(host, id);
  return { writable: new QuicSendStream(sink, sendOrder), side: sink };
}
