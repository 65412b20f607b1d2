/**
 * The send side of a QUIC stream as a `WritableStream<Uint8Array>`.
 *
 * `write()` settles when quiche has taken every byte of the chunk (it may wait for flow-control
 * or congestion credit, which is how a slow peer pushes back on the writer); `close()` sends
 * FIN; `abort(e)` sends RESET_STREAM with `e.streamErrorCode` (0 otherwise).
 */
import { QuicTransportError, codeFromWire, streamCodeOf } from '../errors.js';
import { StreamResult } from '../native.js';
import type { StreamHost, StreamSide } from './stream-host.js';

const EMPTY = new Uint8Array(0);

class SendSink implements UnderlyingSink<ArrayBufferView>, StreamSide {
  readonly #host: StreamHost;
  readonly #id: number;
  #controller!: WritableStreamDefaultController;
  #waiting: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #done = false;

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
    const bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    return this.#push(bytes, false);
  }

  close(): Promise<void> | undefined {
    return this.#push(EMPTY, true);
  }

  abort(reason: unknown): void {
    if (this.#done) return;
    this.#finish();
    this.#host.endpoint.native.streamShutdown(this.#host.handle, this.#id, true, streamCodeOf(reason));
    this.#host.endpoint.flushSoon();
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
  }

  /** Hands `bytes` to quiche, waiting for room as often as needed. */
  #push(bytes: Uint8Array, fin: boolean): Promise<void> | undefined {
    const { endpoint, handle } = this.#host;
    let offset = 0;
    const step = (): Promise<void> | undefined => {
      for (;;) {
        if (this.#done) throw new QuicTransportError('the stream is closed', { source: 'stream', code: 'ERR_QUIC_STREAM_CLOSED' });
        const rest = offset === 0 ? bytes : bytes.subarray(offset);
        const r = endpoint.native.streamSend(handle, this.#id, rest, fin);
        endpoint.flushSoon();
        if (r === StreamResult.PeerAborted) {
          const error = new QuicTransportError('the peer stopped reading the stream (STOP_SENDING)', {
            source: 'stream',
            code: 'ERR_QUIC_STREAM_STOPPED',
            streamErrorCode: codeFromWire(endpoint.native.lastCode(handle)),
          });
          this.#finish();
          throw error;
        }
        if (r === StreamResult.Gone) {
          this.#finish();
          throw new QuicTransportError('the stream can no longer be written', { source: 'stream', code: 'ERR_QUIC_STREAM_CLOSED' });
        }
        if (r > 0) offset += r;
        if (offset === bytes.length && r !== StreamResult.Blocked) {
          if (fin) this.#finish();
          return undefined;
        }
        if (r === StreamResult.Blocked || r < rest.length) {
          return new Promise<void>((resolve, reject) => {
            this.#waiting = { resolve, reject };
          }).then(step);
        }
      }
    };
    return step();
  }

  #finish(): void {
    this.#done = true;
    this.#host.sideDone(this.#id);
  }
}

/** The writable for stream `id`, and the handle its session wakes it through. */
export function createSendStream(host: StreamHost, id: number): { writable: WritableStream<Uint8Array>; side: StreamSide } {
  const sink = new SendSink(host, id);
  // highWaterMark 1: one chunk queued while quiche works on the one before, as the spec's default.
  const writable = new WritableStream<ArrayBufferView>(sink) as WritableStream<Uint8Array>;
  return { writable, side: sink };
}
