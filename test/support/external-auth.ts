/**
 * A TLS listener on the local RabbitMQ that verifies client certificates and accepts SASL EXTERNAL
 * logins (rabbitmq_auth_mechanism_ssl, user name from the certificate's common name), set up at run
 * time with `rabbitmqctl eval` and removed afterwards. Needs the broker on this machine and
 * `rabbitmqctl` / `rabbitmq-plugins` (root); without them the suite fails saying so.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ExternalAuthListener {
  readonly port: number;
  readonly caPem: Buffer;
  /** A client certificate and key whose common name is a broker user with permissions on `/`. */
  readonly client: { readonly cert: Buffer; readonly key: Buffer; readonly user: string };
  /** A client certificate from the same CA whose common name is no broker user. */
  readonly stranger: { readonly cert: Buffer; readonly key: Buffer };
  close(): void;
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const detail = (e as { stderr?: string }).stderr ?? String(e);
    throw new Error(
      `${command} ${args[0] ?? ''} failed: ${detail.trim().slice(0, 500)}\n` +
        'The EXTERNAL test configures the local RabbitMQ with rabbitmqctl and rabbitmq-plugins (as root).',
    );
  }
}

function erlangString(path: string): string {
  return `"${path.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Creates the certificates, enables the plugin, starts the listener and adds the certificate user. */
export function startExternalAuthListener(): ExternalAuthListener {
  const dir = mkdtempSync(join(tmpdir(), 'rxamqp-external-'));
  const user = `rxamqp-external-${process.pid}`;
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): string => run('openssl', args);
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=rxamqp external test CA',
  );
  writeFileSync(file('san.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  const issue = (name: string, cn: string, extfile?: string): void => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-out',
      file(`${name}.pem`),
      '-days',
      '2',
      ...(extfile === undefined ? [] : ['-extfile', extfile]),
    );
  };
  issue('server', 'localhost', file('san.cnf'));
  issue('client', user);
  issue('stranger', `nobody-${process.pid}`);
  // The broker runs as the rabbitmq user: it must be able to enter the directory and read its files.
  execFileSync('chmod', ['755', dir]);
  execFileSync('chmod', ['644', file('ca.pem'), file('server.pem'), file('server.key')]);

  run('rabbitmq-plugins', ['enable', '--quiet', 'rabbitmq_auth_mechanism_ssl']);
  const ssl = `[{cacertfile, ${erlangString(file('ca.pem'))}}, {certfile, ${erlangString(file('server.pem'))}}, {keyfile, ${erlangString(file('server.key'))}}, {verify, verify_peer}, {fail_if_no_peer_cert, true}]`;
  let port = 0;
  for (let attempt = 0; attempt < 5 && port === 0; attempt++) {
    const candidate = 20000 + Math.floor(Math.random() * 20000);
    const out = run('rabbitmqctl', [
      'eval',
      `application:set_env(rabbit, auth_mechanisms, ['PLAIN', 'AMQPLAIN', 'EXTERNAL']), application:set_env(rabbit, ssl_cert_login_from, common_name), application:set_env(rabbit, ssl_options, ${ssl}), rabbit_networking:start_ssl_listener(${candidate}, ${ssl}, 1, 1).`,
    ]);
    if (out.trim() === 'ok') port = candidate;
  }
  if (port === 0) throw new Error('could not start a TLS listener on the local RabbitMQ');
  run('rabbitmqctl', ['add_user', user, `unused-${Math.random()}`]);
  run('rabbitmqctl', ['clear_password', user]);
  run('rabbitmqctl', ['set_permissions', user, '.*', '.*', '.*']);
  return {
    port,
    caPem: readFileSync(file('ca.pem')),
    client: { cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')), user },
    stranger: { cert: readFileSync(file('stranger.pem')), key: readFileSync(file('stranger.key')) },
    close: () => {
      try {
        run('rabbitmqctl', [
          'eval',
          `rabbit_networking:stop_tcp_listener(${port}), application:set_env(rabbit, auth_mechanisms, ['PLAIN', 'AMQPLAIN']), application:unset_env(rabbit, ssl_options).`,
        ]);
        run('rabbitmqctl', ['delete_user', user]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
