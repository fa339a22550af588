/**
 * The in-memory transport between the client and the embedded broker: the client's end is a
 * {@link Transport}, the broker's end a {@link ServerEnd}. Bytes cross asynchronously, on the Promise
 * job queue: a client write is never read by the broker inside the same call, and the broker's
 * output reaches the client's `onData` from a job of its own, never from inside a client call. The
 * Promise job queue is the one scheduler Jest's fake timers leave alone, so the broker keeps working
 * under `jest.useFakeTimers()`.
 *
 * @module
 * @internal
 */
import type { Transport, TransportHandler } from '../../transport/transport.js';

const resolved = Promise.resolve();

/** @internal Runs `task` on the Promise job queue (never faked by Jest's fake timers). */
export function later(task: () => void): void {
  void resolved.then(task);
}

/** @internal What the broker's side of a link receives. */
export interface ServerEnd {
  /** Bytes from the client, in order (the chunks are the client's: not modified, may be kept). */
  receive(chunk: Uint8Array): void;
  /** Called after a batch of `receive` calls: time to write what they produced. */
  flush(): void;
  /** The client ended or destroyed its transport. */
  clientGone(): void;
}

/** @internal One client connection's pair of ends. */
export class MemoryLink {
  private inbound: Uint8Array[] = [];
  private inboundBytes = 0;
  private pumpScheduled = false;
  private needsDrain = false;
  private clientOpen = true;
  private serverOpen = true;
  private ending = false;
  server: ServerEnd | undefined;
  /** The client's transport. */
  readonly transport: Transport;

  constructor(
    private readonly handler: TransportHandler,
    private readonly highWaterMark: number,
    remote: string,
  ) {
    const link = this;
    this.transport = {
      write: (chunk) => link.write(chunk),
      end: () => link.clientEnd(),
      destroy: () => link.clientDestroy(),
      get bufferedBytes() {
        return link.inboundBytes;
      },
      remote,
      secure: false,
    };
  }

  /** True while bytes can still go from the broker to the client. */
  get open(): boolean {
    return this.clientOpen && this.serverOpen;
  }

  private write(chunk: Uint8Array): boolean {
    if (!this.clientOpen || this.ending) return false;
    this.inbound.push(chunk);
    this.inboundBytes += chunk.length;
    this.schedulePump();
    if (this.inboundBytes >= this.highWaterMark) {
      this.needsDrain = true;
      return false;
    }
    return true;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    later(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    const chunks = this.inbound;
    this.inbound = [];
    this.inboundBytes = 0;
    const server = this.server;
    if (server !== undefined && this.serverOpen) {
      for (let i = 0; i < chunks.length && this.serverOpen; i++) server.receive(chunks[i]!);
      server.flush();
    }
    if (this.ending) {
      this.ending = false;
      this.closeBoth(undefined);
      return;
    }
    if (this.needsDrain && this.clientOpen) {
      this.needsDrain = false;
      this.handler.onDrain();
    }
  };

  private clientEnd(): void {
    if (!this.clientOpen || this.ending) return;
    this.ending = true;
    this.schedulePump();
  }

  private clientDestroy(): void {
    if (!this.clientOpen) return;
    this.inbound = [];
    this.inboundBytes = 0;
    this.closeBoth(undefined);
  }

  /** Both sides close: the broker forgets the connection, the client hears onClose once, later. */
  private closeBoth(error: Error | undefined): void {
    if (this.serverOpen) {
      this.serverOpen = false;
      this.server?.clientGone();
    }
    if (this.clientOpen) {
      this.clientOpen = false;
      later(() => this.handler.onClose(error));
    }
  }

  // ---- the broker's side ----------------------------------------------------------------------

  /** Delivers the broker's bytes to the client (called from a job, never inside a client call). */
  toClient(segments: readonly Uint8Array[]): void {
    if (!this.clientOpen) return;
    for (let i = 0; i < segments.length && this.clientOpen; i++) this.handler.onData(segments[i]!);
  }

  /** The broker ends the connection after what it sent: the client sees an orderly close. */
  serverEnd(): void {
    if (!this.serverOpen) return;
    this.serverOpen = false;
    if (this.clientOpen) {
      this.clientOpen = false;
      later(() => this.handler.onClose(undefined));
    }
  }

  /**
   * The connection breaks: the client gets `partial` (the start of a frame, if given), then a
   * transport error, as when a socket is reset.
   */
  serverDrop(error: Error, partial: Uint8Array | undefined): void {
    this.serverOpen = false;
    if (!this.clientOpen) return;
    this.clientOpen = false;
    later(() => {
      if (partial !== undefined) this.handler.onData(partial);
      this.handler.onClose(error);
    });
  }
}
