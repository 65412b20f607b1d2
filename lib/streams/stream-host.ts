/** What a stream needs from its session. */
import type { Endpoint } from '../endpoint.js';

export interface StreamHost {
  readonly endpoint: Endpoint;
  readonly handle: number;
  /** One direction of stream `id` is finished (FIN, reset, stop or error). */
  sideDone(id: number): void;
}

/** A side of a stream that its session can wake up or fail. */
export interface StreamSide {
  /** quiche has data (receive side) or room (send side) for this stream. */
  wake(): void;
  /** The session ended: error the stream with `error` unless it is already done. */
  fail(error: unknown): void;
}
