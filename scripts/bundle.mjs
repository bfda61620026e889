// The one-file build: dist/cli/xmpp-onion-proxy.mjs, the daemon and every runtime dependency in
// one ES module that plain `node` (20 or later) runs without node_modules. It sits where
// dist/cli/main.js does, so that data/ (the bundled map), schemas/ and package.json (the version)
// are found the same way, two folders up. `scripts/release` puts exactly these files together.
import { build } from 'esbuild';

const result = await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli/xmpp-onion-proxy.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  keepNames: true,
  legalComments: 'eof',
  // ws loads these native helpers when present and works without them.
  external: ['bufferutil', 'utf-8-validate'],
  // Some dependencies are CommonJS and call require() for Node's own modules.
  banner: { js: "import { createRequire as __xopCreateRequire } from 'node:module'; const require = __xopCreateRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
const [output] = Object.values(result.metafile.outputs);
process.stdout.write(`dist/cli/xmpp-onion-proxy.mjs: ${(output.bytes / 1024).toFixed(0)} KiB from ${Object.keys(result.metafile.inputs).length} modules\n`);
