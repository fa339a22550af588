// Prints what rxamqp adds to a browser application (minified and gzipped; see test/build/browser-size.ts).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureBrowserProgram } from '../test/build/browser-size.js';

const size = await measureBrowserProgram(join(dirname(fileURLToPath(import.meta.url)), '..'));
console.log(
  `browser program: ${size.minified} bytes minified, ${size.gzipped} bytes gzipped (rxjs excluded)`,
);
for (const { file, bytes } of size.byFile.slice(0, 15)) console.log(`${String(bytes).padStart(8)}  ${file}`);
