/**
 * The relay inside an application's own HTTP server: the server serves a page on `/` and relays
 * WebSockets on `/amqp` to RabbitMQ, on the same port. The page opens a WebSocket to `/amqp`, sends
 * the AMQP protocol header and shows what the broker answered (its connection.start), straight from
 * the browser: no bundler needed to see the path work. A real page would use rxamqp's browser build:
 * `connect('ws://localhost:8080/amqp', { username, password })` (see docs/browser.md).
 *
 * Only the page's own origin may connect (`allowedOrigins`), and every connection opened and closed
 * is logged. Ctrl-C closes the relayed connections (1001), then the server.
 *
 * Run: npx tsx examples/relay/embedded.ts, then open http://localhost:8080/
 * Env: PORT (default 8080; 0 for any free port), AMQP_URL (only its host and port are used: the relay
 * never holds credentials; each browser logs in itself). Needs RabbitMQ on 127.0.0.1:5672 and `ws`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachRelay } from 'rxamqp/relay';

/** The broker's host and port, from AMQP_URL when set (user, password and vhost dropped). */
function brokerAddress(): string {
  const url = new URL(process.env.AMQP_URL ?? 'amqp://127.0.0.1:5672');
  return `${url.protocol}//${url.host}`;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>rxamqp relay</title>
<h1>rxamqp relay</h1>
<p id="status">Connecting to the relay on /amqp...</p>
<script>
  const status = document.getElementById('status');
  const ws = new WebSocket(\`ws://\${location.host}/amqp\`, ['amqp']);
  ws.binaryType = 'arraybuffer';
  // 'AMQP' 0 0 9 1: the first thing an AMQP 0-9-1 client says.
  ws.onopen = () => ws.send(new Uint8Array([65, 77, 81, 80, 0, 0, 9, 1]));
  ws.onmessage = (event) => {
    const bytes = new DataView(event.data);
    const isStart = bytes.getUint8(0) === 1 && bytes.getUint16(7) === 10 && bytes.getUint16(9) === 10;
    status.textContent = isStart
      ? \`RabbitMQ answered through the relay: connection.start, \${bytes.byteLength} bytes.\`
      : \`Got \${bytes.byteLength} bytes.\`;
    ws.close();
  };
  ws.onclose = (event) => console.log('closed', event.code);
</script>
`;

const server = createServer((request, response) => {
  if (request.url === '/' || request.url === '/index.html') {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(PAGE);
  } else {
    response.writeHead(404, { 'Content-Type': 'text/plain' });
    response.end('not found\n');
  }
});

const broker = brokerAddress();
let port = Number(process.env.PORT ?? 8080);
const relay = attachRelay(server, {
  broker,
  path: '/amqp',
  // The page's own origin only, however the browser names this machine.
  allowedOrigins: (origin) => origin === `http://localhost:${port}` || origin === `http://127.0.0.1:${port}`,
  log: (line) => console.log(line),
});

server.listen(port, '127.0.0.1', () => {
  port = (server.address() as AddressInfo).port;
  console.log(`Serving http://localhost:${port}/ with the relay on ws://localhost:${port}/amqp -> ${broker}`);
});

process.once('SIGINT', () => {
  console.log('Stopping...');
  void relay.close().then(() => {
    server.close(() => console.log('Stopped.'));
    server.closeAllConnections();
  });
});
