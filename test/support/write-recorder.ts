/**
 * A transport double for the write side: a connector that opens a real TCP transport (to a scripted
 * server, say) and wraps it to count and measure what the client hands it, and to make it report
 * backpressure on demand (`write` returning false) and drain when the test says so.
 *
 * @example
 * ```ts
 * const writes = new WriteRecorder();
 * const connection = await openConnection({ hostname: '127.0.0.1', port, transport: writes.connector });
 * writes.full = true;         // every write from now on returns false
 * writes.release();           // writes accepted again, and the client is told the transport drained
 * writes.count;               // calls of write / writeMany so far
 * ```
 *
 * @module
 */
import type { Transport, TransportConnector, TransportHandler } from '../../src/transport/index.js';
import { connectTcp } from '../../src/transport/index.js';

/** One call of `write` or `writeMany`: how many bytes it handed over, and whether it was accepted. */
export interface RecordedWrite {
  readonly bytes: number;
  readonly chunks: number;
  readonly accepted: boolean;
}

export class WriteRecorder {
  /** Every write so far, in order. */
  readonly writes: RecordedWrite[] = [];
  /**
   * While true, writes still go to the socket but return false (as above the high-water mark); the
   * client then waits for `onDrain`, which only {@link release} gives while this is set.
   */
  full = false;
  /**
   * Called at each write before its answer is decided (setting `full` here makes this very write
   * return false): `index` counts the writes from 0.
   */
  onWrite: ((index: number, bytes: number) => void) | undefined;
  private handler: TransportHandler | undefined;

  /** The connector to give `openConnection` as `transport`. */
  readonly connector: TransportConnector = async (target, handler, signal) => {
    this.handler = handler;
    const wrappedHandler: TransportHandler = {
      onData: (chunk) => handler.onData(chunk),
      // While full, the client hears of a drain only from release().
      onDrain: () => {
        if (!this.full) handler.onDrain();
      },
      onClose: (error) => handler.onClose(error),
    };
    const inner = await connectTcp(target, wrappedHandler, signal);
    const record = (bytes: number, chunks: number, innerAccepted: boolean): boolean => {
      this.onWrite?.(this.writes.length, bytes);
      const accepted = innerAccepted && !this.full;
      this.writes.push({ bytes, chunks, accepted });
      return accepted;
    };
    const wrapped: Transport = {
      write: (chunk) => record(chunk.length, 1, inner.write(chunk)),
      writeMany: (chunks) => {
        let bytes = 0;
        for (const c of chunks) bytes += c.length;
        const accepted =
          inner.writeMany !== undefined ? inner.writeMany(chunks) : chunks.every((c) => inner.write(c));
        return record(bytes, chunks.length, accepted);
      },
      end: () => inner.end(),
      destroy: () => inner.destroy(),
      get bufferedBytes() {
        return inner.bufferedBytes;
      },
      remote: inner.remote,
      secure: inner.secure,
    };
    return wrapped;
  };

  /** Calls of `write` / `writeMany` so far. */
  get count(): number {
    return this.writes.length;
  }

  /** Bytes handed over so far. */
  get bytes(): number {
    let total = 0;
    for (const w of this.writes) total += w.bytes;
    return total;
  }

  /** Accepts writes again and tells the client the transport drained. */
  release(): void {
    this.full = false;
    this.handler?.onDrain();
  }
}

/** Resolves once `ready()` holds (checked every few milliseconds); rejects after `timeoutMs`. */
export async function waitFor(ready: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Resolves after the current turn of the event loop (its microtasks and `setImmediate` tasks queued so far). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
