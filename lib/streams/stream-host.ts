/** What a stream needs from its session. */
import { channels } from '../diagnostics.js';
import type { Endpoint } from '../endpoint.js';

export interface StreamHost {
  readonly endpoint: Endpoint;
  readonly handle: number;
  /** The session is up; false once it has ended (its streams are being failed). */
  readonly connected: boolean;
  /** The session, for diagnostics payloads. */
  readonly session: object;
  /** One direction of stream `id` is finished (FIN, reset, stop or error). */
  sideDone(id: number): void;
}

/** A side of a stream that its session can wake up or fail. */
export interface StreamSide {
  /** quiche has data (receive side) or room (send side) for this stream. */
  wake(): void;
  /** The session ended: error the stream with `error` unless it is already done. */
  fail(error: unknown): void;
  /** A writer waits for quiche to take more (flow or congestion control). */
  readonly blocked: boolean;
}

/** Publishes `quichex:stream:reset` (RESET_STREAM or STOP_SENDING, sent or received). */
export function publishReset(
  host: StreamHost,
  streamId: number,
  direction: 'send' | 'receive',
  by: 'local' | 'peer',
  code: number | bigint,
): void {
  if (channels.streamReset.hasSubscribers)
    channels.streamReset.publish({ session: host.session, streamId, direction, by, code });
}
