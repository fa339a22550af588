/** The page: the connection's state, the live view of a queue, and a form that publishes. */
import { ChangeDetectionStrategy, Component, computed, inject } from '@angular/core';
import { RxAmqp } from 'rxamqp/angular';
import { Feed } from './feed';
import { PublishForm } from './publish-form';
import { SETTINGS } from './settings';

@Component({
  selector: 'app-root',
  imports: [Feed, PublishForm],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <header>
      <h1>rxamqp · Angular</h1>
      <span class="status" [class]="status().toLowerCase()" data-testid="status">{{ status() }}</span>
      <span class="where">via <code data-testid="relay">{{ settings.relay }}</code></span>
      @if (cause(); as why) {
        <span class="cause" data-testid="cause">{{ why }}</span>
      }
    </header>
    <main>
      <app-feed />
      <app-publish-form />
    </main>
  `,
  styles: `
    header { display: flex; align-items: baseline; gap: 1rem; padding: 0.75rem 1.5rem; background: #1d2430; color: #fff; }
    h1 { font-size: 1.2rem; margin: 0; }
    .status { padding: 0.1rem 0.6rem; border-radius: 1rem; background: #8a6d00; font-weight: 600; }
    .status.connected { background: #1c7c3c; }
    .status.closed { background: #a12b2b; }
    .where, .cause { opacity: 0.8; font-size: 0.9rem; }
    main { display: grid; grid-template-columns: 2fr 1fr; gap: 1.5rem; padding: 1.5rem; }
  `,
})
export class App {
  private readonly amqp = inject(RxAmqp);
  readonly settings = inject(SETTINGS);
  readonly status = computed(() => this.amqp.state().status);
  readonly cause = computed(() => this.amqp.state().cause?.message);
}
