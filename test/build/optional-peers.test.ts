/**
 * The integrations' frameworks are optional peer dependencies: importing an entry loads only what that
 * entry is for. This walks the static (run-time) imports of each entry point through the sources and
 * lists the packages it reaches: `rxamqp` never loads NestJS, mqtt.js or reflect-metadata,
 * `rxamqp/mq` loads mqtt.js only on demand (a dynamic import when an MQTT URL is used),
 * `rxamqp/nestjs` loads NestJS but not mqtt.js, `rxamqp/angular` loads `@angular/core` only, and
 * `rxamqp/relay` loads `ws` only (the Node entry loads `ws` on demand, for ws: URLs), and `rxamqp/otel`
 * loads `@opentelemetry/api` only (the core has the telemetry seam, never the OpenTelemetry API).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** The packages reached from `entry` by static, non-type imports (dynamic `import()` does not count). */
function packagesReached(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(join(ROOT, file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)) {
      if (m[2] !== undefined) continue;
      const specifier = m[3] as string;
      if (specifier.startsWith('.')) {
        const target = normalize(join(dirname(file), specifier)).replace(/\.js$/, '.ts');
        if (existsSync(join(ROOT, target))) visit(target);
        continue;
      }
      if (specifier.startsWith('node:')) continue;
      const parts = specifier.split('/');
      packages.add(specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string));
    }
  };
  visit(entry);
  return packages;
}

const FRAMEWORKS = /^(@nestjs\/|mqtt$|reflect-metadata$|ws$|@angular\/|@opentelemetry\/)/;

describe('optional peer dependencies', () => {
  it.each([
    ['rxamqp (Node)', 'src/node.ts'],
    ['rxamqp (other runtimes)', 'src/index.ts'],
    ['rxamqp/operators', 'operators/index.ts'],
    ['rxamqp/testing', 'src/testing/node.ts'],
    ['rxamqp/mq', 'src/mq/index.ts'],
  ])('%s loads no framework', (_name, entry) => {
    const frameworks = [...packagesReached(entry)].filter((p) => FRAMEWORKS.test(p));
    expect(frameworks).toEqual([]);
  });

  it('rxamqp/nestjs loads NestJS (and reflect-metadata), not mqtt.js', () => {
    const reached = packagesReached('src/nestjs/index.ts');
    expect(reached.has('@nestjs/common')).toBe(true);
    expect(reached.has('@nestjs/core')).toBe(true);
    expect(reached.has('reflect-metadata')).toBe(true);
    expect(reached.has('mqtt')).toBe(false);
    expect(reached.has('@nestjs/terminus')).toBe(false);
  });

  it('rxamqp/angular loads @angular/core and no other framework (nor ws: browsers have a WebSocket)', () => {
    const frameworks = [...packagesReached('src/angular/index.ts')].filter((p) => FRAMEWORKS.test(p));
    expect(frameworks).toEqual(['@angular/core']);
  });

  it('rxamqp/relay loads ws and no other framework', () => {
    const frameworks = [...packagesReached('src/relay/index.ts')].filter((p) => FRAMEWORKS.test(p));
    expect(frameworks).toEqual(['ws']);
  });

  it('rxamqp/otel loads @opentelemetry/api and nothing else of OpenTelemetry (no SDK)', () => {
    const frameworks = [...packagesReached('src/otel/index.ts')].filter((p) => FRAMEWORKS.test(p));
    expect(frameworks).toEqual(['@opentelemetry/api']);
  });
});
