import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { generate, OUTPUT_PATH, SPEC_PATH, type Spec } from '../../scripts/generate-protocol.js';

describe('the committed generated codec', () => {
  const committed = readFileSync(OUTPUT_PATH, 'utf8');

  it('matches a fresh generation from the spec (or, without the spec, the spec it names)', () => {
    const recorded = /sha256 ([0-9a-f]{64})/.exec(committed)?.[1];
    expect(recorded).toMatch(/^[0-9a-f]{64}$/);
    if (existsSync(SPEC_PATH)) {
      const specText = readFileSync(SPEC_PATH, 'utf8');
      expect(createHash('sha256').update(specText).digest('hex')).toBe(recorded);
      expect(generate(JSON.parse(specText) as Spec, specText)).toBe(committed);
    } else {
      // Without ../shared/spec the file can only be checked against itself: it must still say which
      // spec it came from and must not have been edited by hand since (it is what the generator writes).
      expect(committed.startsWith('// AMQP 0-9-1 method definitions. DO NOT EDIT')).toBe(true);
    }
  });

  it('is generated deterministically', () => {
    if (!existsSync(SPEC_PATH)) {
      expect(committed).toContain('DO NOT EDIT');
      return;
    }
    const specText = readFileSync(SPEC_PATH, 'utf8');
    const spec = JSON.parse(specText) as Spec;
    expect(generate(spec, specText)).toBe(generate(JSON.parse(specText) as Spec, specText));
  });
});
