/**
 * The order events the controller has handled, and a way to wait until some number of them were.
 */
import { Injectable } from '@nestjs/common';
import type { HandledEvent } from './shop.js';

@Injectable()
export class OrderLog {
  readonly handled: HandledEvent[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  /** Records one handled event and wakes those waiting for as many. */
  record(event: HandledEvent): void {
    this.handled.push(event);
    const ready = this.waiters.filter((w) => this.handled.length >= w.count);
    this.waiters = this.waiters.filter((w) => this.handled.length < w.count);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves once `count` events were handled; rejects after `ms`. */
  waitFor(count: number, ms: number): Promise<void> {
    if (this.handled.length >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.handled.length} of ${count} events handled after ${ms} ms`));
      }, ms);
      const waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
    });
  }
}
