/**
 * `rxamqp/mq`: marble tests of a receiver queue's `messages$`, the hand-made share of the backend's
 * stream: one subscription of the backend for all local subscribers, hot, ended by the last one to
 * leave, and started again after an end (error, completion or no subscriber left), as `share()` is.
 */
import { EMPTY, NEVER, Observable, take, throwError } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import type { MqBackend } from '../../src/mq/backend.js';
import { MqConnection } from '../../src/mq/connection.js';
import type { MqMessage } from '../../src/mq/types.js';

/** A backend whose receivers' stream is `messages` (the rest unused here). */
function fakeBackend(messages: Observable<MqMessage>): MqBackend {
  return {
    kind: 'amqp',
    status$: NEVER,
    errors$: NEVER,
    send: () => EMPTY,
    receive: () => messages,
    close: () => EMPTY,
  };
}

/** Stand-ins for messages: the marbles compare them by identity. */
const a = { id: 'a' } as unknown as MqMessage;
const b = { id: 'b' } as unknown as MqMessage;
const c = { id: 'c' } as unknown as MqMessage;
const values = { a, b, c };

function receiver(messages: Observable<MqMessage>) {
  return new MqConnection(fakeBackend(messages), 'fake://').queue({ name: 'jobs', role: 'receiver' });
}

describe('a receiver queue: messages$ is shared', () => {
  it(
    'one subscription of the backend for every local subscriber; a later one gets only what follows',
    marbles((m) => {
      const source = m.cold('-a-b-c-|', values);
      const messages$ = receiver(source).messages$;
      m.expect(messages$).toBeObservable('-a-b-c-|', values);
      m.expect(messages$, '---^').toBeObservable('---b-c-|', values);
      m.expect(source).toHaveSubscriptions('^------!');
    }),
  );

  it(
    'the last subscriber to leave unsubscribes the backend; the next subscriber starts it again',
    marbles((m) => {
      const source = m.cold('-a-b-c', values);
      const messages$ = receiver(source).messages$;
      m.expect(messages$, '^--!').toBeObservable('-a--', values);
      m.expect(messages$, '-^----!').toBeObservable('-a-b-c', values);
      m.expect(messages$, '-------^---!').toBeObservable('--------a-b-', values);
      m.expect(source).toHaveSubscriptions(['^-----!', '-------^---!']);
    }),
  );

  it(
    'an error reaches every subscriber and ends the run: a later subscriber subscribes the backend again',
    marbles((m) => {
      const source = m.cold('-a-#', values, new Error('lost'));
      const messages$ = receiver(source).messages$;
      m.expect(messages$).toBeObservable('-a-#', values, new Error('lost'));
      m.expect(messages$, '--^').toBeObservable('---#', values, new Error('lost'));
      m.expect(messages$, '-----^').toBeObservable('------a-#', values, new Error('lost'));
      m.expect(source).toHaveSubscriptions(['^--!', '-----^--!']);
    }),
  );

  it(
    'completion reaches every subscriber (the connection closed)',
    marbles((m) => {
      const source = m.cold('-a--|', values);
      const messages$ = receiver(source).messages$;
      m.expect(messages$).toBeObservable('-a--|', values);
      m.expect(messages$, '--^').toBeObservable('----|', values);
      m.expect(source).toHaveSubscriptions('^---!');
    }),
  );

  it('a backend stream that fails as it is subscribed fails that subscriber, and is tried again by the next', () => {
    let subscriptions = 0;
    const messages$ = receiver(
      new Observable<MqMessage>((subscriber) => {
        subscriptions++;
        subscriber.error(new Error(`refused ${subscriptions}`));
      }),
    ).messages$;
    const errors: string[] = [];
    messages$.subscribe({ error: (e: Error) => errors.push(e.message) });
    messages$.subscribe({ error: (e: Error) => errors.push(e.message) });
    expect(errors).toEqual(['refused 1', 'refused 2']);
    expect(subscriptions).toBe(2);
  });

  it('a subscriber leaving while the backend emits at once is unsubscribed, and the backend with it', () => {
    let unsubscribed = 0;
    const messages$ = receiver(
      new Observable<MqMessage>((subscriber) => {
        subscriber.next(a);
        subscriber.next(b);
        return () => unsubscribed++;
      }),
    ).messages$;
    const got: MqMessage[] = [];
    messages$.pipe(take(1)).subscribe((message) => got.push(message));
    expect(got).toEqual([a]);
    expect(unsubscribed).toBe(1);
  });

  it('each message reaches the subscribers in the order they subscribed', () => {
    const source = new Observable<MqMessage>((subscriber) => {
      setTimeout(() => subscriber.next(c));
    });
    const messages$ = receiver(source).messages$;
    const order: string[] = [];
    messages$.subscribe(() => order.push('first'));
    messages$.subscribe(() => order.push('second'));
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        expect(order).toEqual(['first', 'second']);
        resolve();
      }, 5),
    );
  });

  it('an error thrown by the backend stream as it is subscribed reaches the subscriber', () => {
    const messages$ = receiver(throwError(() => new Error('closed'))).messages$;
    let error: unknown;
    messages$.subscribe({ error: (e) => (error = e) });
    expect((error as Error).message).toBe('closed');
  });
});
