// Writes schemas/*.json from the schemas in src (npm run schemas); a test checks they match.
import { writeFileSync } from 'node:fs';
import { jsonSchemas } from '../src/cli/json-schemas.js';

for (const [name, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(new URL(`../schemas/${name}`, import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote schemas/${name}`);
}
