/**
 * The live view of a queue: the page consumes it (declared durable, consumed again after every
 * reconnect), each message acknowledged once shown, the last 500 kept in a signal.
 */
import { ChangeDetectionStrategy, Component, computed, inject } from '@angular/core';
import { messagesSignal, RxAmqp } from 'rxamqp/angular';
import { map } from 'rxjs';
import { SETTINGS } from './settings';

interface Row {
  readonly id: number;
  readonly body: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
}

@Component({
  selector: 'app-feed',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section>
      <h2>
        Messages on <code>{{ settings.queue }}</code>
        <span class="count" data-testid="message-count">{{ rows().length }}</span>
      </h2>
      @if (rows().length === 0) {
        <p class="empty">Nothing yet: publish to <code>{{ settings.queue }}</code>.</p>
      }
      <ol>
        @for (row of newestFirst(); track row.id) {
          <li data-testid="message" [attr.data-body]="row.body">
            <span class="n">#{{ row.id }}</span>
            <code class="body">{{ row.body }}</code>
            @if (row.redelivered) {
              <span class="again">redelivered</span>
            }
          </li>
        }
      </ol>
    </section>
  `,
  styles: `
    section { background: #fff; border-radius: 0.5rem; padding: 1rem 1.25rem; box-shadow: 0 1px 3px #0002; }
    h2 { font-size: 1rem; margin-top: 0; }
    .count { margin-left: 0.5rem; padding: 0 0.5rem; border-radius: 1rem; background: #e3e8f0; }
    ol { list-style: none; padding: 0; margin: 0; max-height: 70vh; overflow: auto; }
    li { display: flex; gap: 0.75rem; padding: 0.2rem 0; border-bottom: 1px solid #eef0f3; }
    .n { color: #7a8494; min-width: 3rem; }
    .again { color: #8a6d00; font-size: 0.8rem; }
  `,
})
export class Feed {
  readonly settings = inject(SETTINGS);
  private next = 1;
  readonly rows = messagesSignal(
    inject(RxAmqp)
      .consume({ name: this.settings.queue, durable: true }, { autoAck: true, prefetch: 50 })
      .pipe(
        map(
          (d): Row => ({
            id: this.next++,
            body: d.text(),
            routingKey: d.fields.routingKey,
            redelivered: d.fields.redelivered,
          }),
        ),
      ),
    { keep: 500 },
  );
  readonly newestFirst = computed(() => [...this.rows()].reverse());
}
