/** AckTracker.hasUnsettled: whether a consumer cancelled by the broker held deliveries (consumer timeouts). */
import { AckTracker, MAX_WINDOW } from '../../src/core/ack-tracker.js';

describe('AckTracker.hasUnsettled', () => {
  it('is false with nothing delivered, true while a delivery from the given tag on is unsettled', () => {
    const t = new AckTracker(() => {});
    expect(t.hasUnsettled()).toBe(false);
    t.delivered(1, true);
    t.delivered(2, true);
    t.delivered(3, false); // noAck: nothing to settle
    expect(t.hasUnsettled()).toBe(true);
    expect(t.hasUnsettled(3)).toBe(false);
    t.settle('ack', 1, false, false); // held, not yet sent: settled as far as the user is concerned
    expect(t.hasUnsettled(1)).toBe(true); // tag 2 still is not
    t.settle('reject', 2, false, true);
    expect(t.hasUnsettled()).toBe(false);
    t.flush();
    expect(t.hasUnsettled()).toBe(false);
  });

  it('sees the stragglers set aside when the window overflowed', () => {
    const t = new AckTracker(() => {});
    t.delivered(1, true);
    for (let tag = 2; tag <= MAX_WINDOW + 2; tag++) {
      t.delivered(tag, true);
      if (tag > 1) t.settle('ack', tag, false, false);
    }
    expect(t.hasUnsettled(1)).toBe(true);
    expect(t.hasUnsettled(2)).toBe(false);
    t.settle('ack', 1, false, false);
    expect(t.hasUnsettled()).toBe(false);
  });
});
