// The --config file and the onion map are checked by their schemas: no value fails open.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CONFIG_SCHEMA } from '../../src/cli/config-schema.js';
import { jsonSchemas } from '../../src/cli/json-schemas.js';
import { tailsConfig } from '../../src/deploy/tails-setup.js';
import { MAP_SCHEMA, parseMapJson } from '../../src/onionmap/map-file.js';
import { requireBuild, runCli, tempDir } from './built-cli.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** For every option, a value of the wrong type (or out of its range or set). */
const WRONG: Record<string, unknown> = {
  $schema: 1,
  listen: 5222,
  socks: true,
  socksAllowOtherPorts: 'yes',
  allowRemote: 1,
  tor: 9050,
  map: ['a.json'],
  onionOnly: 'true',
  pipelining: 'no',
  isolation: 'per-circuit',
  maxConnections: '100',
  headerTimeout: 0,
  negotiationTimeout: 1.5,
  connectTimeout: 3601,
  preTlsBytes: 10,
  preTlsMemory: 0,
  logLevel: 'verbose',
  control: true,
};

t.test('every option of the config file has a wrong value in this test', async (t) => {
  t.same(Object.keys(WRONG).sort(), Object.keys(CONFIG_SCHEMA.shape).sort());
});

t.test('every option given a wrong value: exit 2, naming the option, what was expected and what was found', async (t) => {
  if (!requireBuild(t)) return;
  const dir = tempDir(t);
  for (const [key, value] of Object.entries(WRONG)) {
    const file = path.join(dir, `${key.replace('$', '')}.json`);
    writeFileSync(file, JSON.stringify({ [key]: value }));
    const run = await runCli(['--config', file, '--listen', '127.0.0.1:0', '--no-control']);
    t.equal(run.code, 2, `${key}: a usage error`);
    t.ok(run.stderr.includes(`${file}: "${key}": expected `) && run.stderr.includes(', got '), `${key}: named with the file, what was expected and found`);
    t.notMatch(run.stderr, /TypeError|at .*\.js:\d+/, `${key}: no stack trace`);
  }
  const misspelt = path.join(dir, 'misspelt.json');
  writeFileSync(misspelt, JSON.stringify({ onionOnyl: true }));
  const run = await runCli(['--config', misspelt, '--no-control']);
  t.equal(run.code, 2);
  t.match(run.stderr, '"onionOnyl": unknown option', 'a misspelt option is refused, not ignored');
});

t.test('the published JSON Schemas are the ones the daemon checks with', async (t) => {
  for (const [name, schema] of Object.entries(jsonSchemas())) {
    t.same(JSON.parse(readFileSync(path.join(ROOT, 'schemas', name), 'utf8')), schema, `schemas/${name} is current (npm run schemas)`);
  }
});

t.test('the shipped configurations and the bundled map validate', async (t) => {
  t.ok(CONFIG_SCHEMA.safeParse(JSON.parse(readFileSync(path.join(ROOT, 'systemd', 'config.json'), 'utf8'))).success, 'systemd/config.json');
  t.ok(CONFIG_SCHEMA.safeParse(tailsConfig()).success, 'the Tails configuration');
  const map = readFileSync(path.join(ROOT, 'data', 'onions.json'), 'utf8');
  t.ok(MAP_SCHEMA.safeParse(JSON.parse(map)).success, 'data/onions.json against its schema');
  t.ok(parseMapJson(map, 'data/onions.json').length > 20, 'and through the daemon');
});
