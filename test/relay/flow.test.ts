/**
 * Backpressure through the relay, against a fake broker, with patterned bytes so that any lost,
 * duplicated or reordered byte shows: a browser that stops reading holds the broker back (the relay
 * stops reading its broker socket instead of buffering) and gets everything once it reads again; a
 * broker that stops reading holds the browser back the same way; a browser that never reads is cut
 * after slowClientTimeoutMs; and bytes sent before the broker connection is ready arrive, in order.
 */
import { once } from 'node:events';
import { selfSignedCertificate } from './support/certificate.js';
import { LogLines, openClient, rawUpgrade } from './support/clients.js';
import { type FakeBroker, PatternChecker, patternAt, startFakeBroker } from './support/fake-broker.js';
import { useRelaysToFakeBroker } from './support/relays.js';

const MIB = 1024 * 1024;
/** Far more than the kernel's socket buffers on the path can hold (tcp_rmem max is 32 MiB here). */
const FLOOD_LIMIT = 160 * MIB;

const fixture = useRelaysToFakeBroker();
const { relayWith } = fixture;
let broker: FakeBroker;

beforeEach(() => {
  broker = fixture.broker();
});

describe('backpressure', () => {
  it('broker to browser: a browser that stops reading stops the broker; it then gets every byte in order', async () => {
    const { url } = await relayWith({ maxBufferedBytes: 256 * 1024, slowClientTimeoutMs: 5_000 });
    const client = await openClient(url);
    client.ws.pause();
    const checker = new PatternChecker();
    client.onMessage = (data) => checker.push(data);
    const connection = await broker.nextConnection();
    const flood = connection.flood(FLOOD_LIMIT);
    // Held back: the relay read a bounded amount and stopped (without backpressure it would read on).
    const held = await flood.stalled;
    expect(held).toBeLessThan(FLOOD_LIMIT / 2);
    flood.stop();
    client.ws.resume();
    const sent = await flood.finished;
    connection.socket.end();
    expect(await client.closed).toEqual({ code: 1000, reason: '' });
    expect(checker.offset).toBe(sent);
  });

  it('browser to broker: a broker that stops reading stops the browser; it then gets every byte in order', async () => {
    const { url } = await relayWith();
    const client = await openClient(url);
    const connection = await broker.nextConnection();
    connection.socket.pause();
    // The browser sends messages of varied sizes while its own buffer stays under 4 MiB, until
    // nothing has left it for 300 ms.
    let sent = 0;
    let size = 1;
    let stalledAt = -1;
    while (stalledAt < 0) {
      if (sent >= FLOOD_LIMIT) throw new Error('the relay never stopped reading from the browser');
      if (client.ws.bufferedAmount < 4 * MIB) {
        const chunk = patternAt(sent, size);
        client.send(chunk);
        sent += chunk.length;
        size = (size * 7 + 13) % (200 * 1024);
        continue;
      }
      const before = client.ws.bufferedAmount;
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (client.ws.bufferedAmount === before) stalledAt = sent - before;
    }
    // What left the browser is bounded: the relay stopped reading it.
    expect(stalledAt).toBeLessThan(FLOOD_LIMIT / 2);
    const checker = new PatternChecker();
    connection.socket.removeAllListeners('data');
    connection.socket.on('data', (chunk: Buffer) => checker.push(chunk));
    connection.socket.resume();
    while (checker.offset < sent) await once(connection.socket, 'data');
    expect(checker.offset).toBe(sent);
    await client.close();
  });
});

describe('slow clients', () => {
  it('cuts a browser stuck at maxBufferedBytes for slowClientTimeoutMs: broker socket destroyed, 1008', async () => {
    const logs = new LogLines();
    const { relay, url } = await relayWith({
      maxBufferedBytes: 64 * 1024,
      slowClientTimeoutMs: 200,
      log: logs.log,
    });
    const client = await openClient(url);
    client.ws.pause();
    const connection = await broker.nextConnection();
    const flood = connection.flood(FLOOD_LIMIT);
    await connection.whenClosed;
    expect(connection.ended).toBe(false); // destroyed, not ended
    flood.stop();
    // A browser that reads again gets what was queued for it, then the close.
    client.ws.resume();
    expect(await client.closed).toEqual({ code: 1008, reason: 'slow client' });
    expect(await logs.waitFor(/ close /)).toContain('reason="slow client (1008)"');
    expect(relay.connections).toBe(0);
  });

  it('destroys the socket of a browser that never reads, once its close makes no progress', async () => {
    const logs = new LogLines();
    const { relay, port } = await relayWith({
      maxBufferedBytes: 64 * 1024,
      slowClientTimeoutMs: 100,
      log: logs.log,
    });
    const socket = await rawUpgrade(port);
    const connection = await broker.nextConnection();
    const flood = connection.flood(FLOOD_LIMIT);
    await connection.whenClosed;
    flood.stop();
    // The relay gives up on the close frame it cannot deliver (CLOSE_GRACE_MS) and destroys the socket.
    expect(await logs.waitFor(/ close /)).toContain('reason="slow client (1008)"');
    expect(relay.connections).toBe(0);
    socket.destroy();
  });
});

describe('bytes before the broker connection is ready', () => {
  it('are held (the browser paused past maxBufferedBytes) and sent in order once it is ready', async () => {
    const { cert, key } = selfSignedCertificate();
    const tlsBroker = await startFakeBroker({ tls: { cert, key }, holdHandshakes: true });
    try {
      const { url } = await relayWith({
        broker: tlsBroker.url,
        brokerTls: { ca: cert },
        maxBufferedBytes: 64 * 1024,
      });
      const client = await openClient(url);
      await tlsBroker.handshakeHeld();
      const total = 1 * MIB + 3;
      for (let sent = 0; sent < total; ) {
        const size = Math.min(10_000, total - sent);
        client.send(patternAt(sent, size));
        sent += size;
      }
      tlsBroker.releaseHandshakes();
      const connection = await tlsBroker.nextConnection();
      const bytes = await connection.waitForBytes(total);
      expect(bytes.length).toBe(total);
      new PatternChecker().push(bytes);
      await client.close();
    } finally {
      await tlsBroker.close();
    }
  });
});
