/**
 * A form that publishes to a queue through the default exchange, each message listed with the
 * broker's answer (publisher confirms): `pending`, then `acked`. Published while the connection is
 * down, a message waits in the service's publisher and goes out after the reconnect.
 */
import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { RxAmqp } from 'rxamqp/angular';
import { SETTINGS } from './settings';

interface Sent {
  readonly id: number;
  readonly body: string;
  readonly status: string;
}

@Component({
  selector: 'app-publish-form',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section>
      <h2>Publish</h2>
      <form (submit)="publish($event, routingKey.value, body.value); body.value = ''">
        <label>
          Routing key (a queue)
          <input #routingKey name="routingKey" data-testid="routing-key" [value]="settings.publishTo" />
        </label>
        <label>
          Message
          <input #body name="body" data-testid="body" placeholder="hello" autocomplete="off" />
        </label>
        <button type="submit" data-testid="publish">Publish</button>
      </form>
      <ol>
        @for (m of sent(); track m.id) {
          <li data-testid="sent" [attr.data-status]="m.status">
            <code>{{ m.body }}</code> <span class="status">{{ m.status }}</span>
          </li>
        }
      </ol>
    </section>
  `,
  styles: `
    section { background: #fff; border-radius: 0.5rem; padding: 1rem 1.25rem; box-shadow: 0 1px 3px #0002; }
    h2 { font-size: 1rem; margin-top: 0; }
    form { display: grid; gap: 0.6rem; }
    label { display: grid; gap: 0.2rem; font-size: 0.85rem; color: #4a5466; }
    input { padding: 0.35rem 0.5rem; font: inherit; }
    button { justify-self: start; padding: 0.35rem 1rem; font: inherit; }
    ol { list-style: none; padding: 0; font-size: 0.9rem; }
    .status { margin-left: 0.5rem; color: #1c7c3c; }
  `,
})
export class PublishForm {
  private readonly amqp = inject(RxAmqp);
  readonly settings = inject(SETTINGS);
  readonly sent = signal<readonly Sent[]>([]);
  private next = 1;

  publish(event: Event, routingKey: string, body: string): void {
    event.preventDefault();
    const id = this.next++;
    this.sent.update((list) => [{ id, body, status: 'pending' }, ...list]);
    const settle = (status: string) =>
      this.sent.update((list) => list.map((m) => (m.id === id ? { ...m, status } : m)));
    this.amqp.publish('', routingKey, body, { contentType: 'text/plain', deliveryMode: 2 }).subscribe({
      next: (outcome) => settle(outcome.status),
      error: (error: unknown) => settle(`failed: ${error instanceof Error ? error.message : String(error)}`),
    });
  }
}
