// Lets `node --import ./bench/register.mjs bench/run.ts` run the TypeScript benchmark (and the
// test helpers it imports) directly: tap's own TypeScript loader (a ts-node fork, registered
// with module.register). Transpile only: `npm run lint` (tsc --noEmit) type-checks bench/.
process.env.TS_NODE_TRANSPILE_ONLY ??= '1';
process.env.TS_NODE_PROJECT ??= new URL('../tsconfig.json', import.meta.url).pathname;
await import('@tapjs/typescript/import');
