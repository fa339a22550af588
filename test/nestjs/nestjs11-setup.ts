/**
 * Setup of the NestJS 11 run (jest.nestjs11.config.cjs): fails every suite unless `@nestjs/*` really
 * resolves to NestJS 11, and says which version runs.
 */
const { version } = require('@nestjs/core/package.json') as { version: string };
if (!version.startsWith('11.')) {
  throw new Error(`the NestJS 11 run loaded @nestjs/core ${version}: check jest.nestjs11.config.cjs`);
}
process.stdout.write(`[nestjs ${version}]\n`);
