/**
 * The states a connection Observable goes through (`state$`), in a module of their own so that those
 * who report them (`diagnostics$`) need nothing else of the supervisor.
 *
 * @module
 */

/**
 * Where a connection Observable stands:
 *
 * - `INITIAL`: nobody subscribed yet;
 * - `CONNECTING`: an attempt is under way (`host`, `attempt`);
 * - `CONNECTED`: open (`host`);
 * - `RECONNECTING`: the connection was lost or an attempt failed (`cause`), and the next attempt starts
 *   after `delay` ms on `host` (`attempt` counts the retries since the last open connection); with
 *   `preferNode`, the RECONNECTING that follows the loss of an open connection has no `host` (nor
 *   `node`): `preferNode`, asked after the delay, picks it;
 * - `CLOSING`: the last subscriber left, or `close()` was called: the close handshake is under way;
 * - `CLOSED`: over; `cause` says why when it was not the client (an error that was not retried, or
 *   the retries ran out).
 */
export type ConnectionStatus = 'INITIAL' | 'CONNECTING' | 'CONNECTED' | 'RECONNECTING' | 'CLOSING' | 'CLOSED';

/**
 * One event of `state$`.
 *
 * @example
 * ```ts
 * const connection$ = connect(url, { recovery: true });
 * connection$.state$.subscribe(({ status, host, cause }) => console.log(status, host ?? '', cause?.message ?? ''));
 * ```
 */
export interface ConnectionState {
  readonly status: ConnectionStatus;
  /**
   * `host:port` of the attempt or of the open connection; on `RECONNECTING`, of the next attempt
   * (none after a loss when `preferNode` is set: it picks the host after the delay).
   */
  readonly host?: string;
  /**
   * The broker node at `host`, when the `hosts` entry names it (`{ hostname, port, node }`): RabbitMQ
   * does not name its node to AMQP 0-9-1 clients.
   */
  readonly node?: string;
  /** Why the connection was lost, an attempt failed, or it closed. */
  readonly cause?: Error;
  /** CONNECTING: the attempt number since the last open connection (1 for the first try). RECONNECTING: the retry number. */
  readonly attempt?: number;
  /** RECONNECTING: milliseconds until the next attempt. */
  readonly delay?: number;
}
