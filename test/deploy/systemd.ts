// The shipped systemd units: exposure scores from `systemd-analyze security --offline=true`,
// `systemd-analyze verify`, and the socket units' door names as the daemon understands them.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { buildDaemonConfig } from '../../src/cli/daemon-config.js';
import { runCommand } from '../helpers/run-command.js';

const UNITS = fileURLToPath(new URL('../../systemd/', import.meta.url));
const SERVICE = 'xmpp-onion-proxy.service';
const SOCKETS = ['xmpp-onion-proxy.socket', 'xmpp-onion-proxy-socks.socket'];
const ISOLATED = 'xmpp-onion-proxy-isolated.conf';
const LAUNCHER = '/usr/local/bin/xmpp-onion-proxy';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-systemd-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function overallExposure(output: string): number {
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(output);
  if (!match) throw new Error(`no "Overall exposure level" in:\n${output}`);
  return Number(match[1]);
}

/** The units laid out as scripts/install lays them out, under a root folder (--root). */
function installedRoot(name: string, options: { isolated: boolean }): string {
  const root = path.join(tmp, name);
  const unitDir = path.join(root, 'usr/local/lib/systemd/system');
  mkdirSync(path.join(unitDir, `${SERVICE}.d`), { recursive: true });
  for (const unit of [SERVICE, ...SOCKETS]) copyFileSync(path.join(UNITS, unit), path.join(unitDir, unit));
  if (options.isolated) copyFileSync(path.join(UNITS, ISOLATED), path.join(unitDir, `${SERVICE}.d`, 'isolated.conf'));
  return root;
}

function unitLines(file: string): string[] {
  return readFileSync(path.join(UNITS, file), 'utf8').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

t.test('the service as shipped: exposure 1.5 or lower', async (t) => {
  const result = await runCommand('systemd-analyze', ['security', '--offline=true', path.join(UNITS, SERVICE)]);
  t.equal(result.code, 0, result.stderr);
  const score = overallExposure(result.stdout);
  t.comment(`${SERVICE}: exposure ${score}`);
  t.ok(score <= 1.5, `exposure ${score} ≤ 1.5`);
  for (const setting of ['User=/DynamicUser=', 'ProtectSystem=', 'ProtectHome=', 'PrivateTmp=', 'PrivateDevices=', 'NoNewPrivileges=', 'SystemCallFilter=~@privileged']) {
    t.match(result.stdout, new RegExp(`✓ ${setting.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `${setting} counted`);
  }
  t.match(result.stdout, /IPAddressDeny=\s+Service defines IP address allow list with only localhost entries/, 'the kernel allows loopback only');
});

t.test('the network-less profile (socket activation, Tor through a Unix socket): exposure 1.0 or lower', async (t) => {
  const root = installedRoot('isolated', { isolated: true });
  const result = await runCommand('systemd-analyze', ['security', '--offline=true', `--root=${root}`, SERVICE]);
  t.equal(result.code, 0, result.stderr);
  const score = overallExposure(result.stdout);
  t.comment(`${SERVICE} + ${ISOLATED}: exposure ${score}`);
  t.ok(score <= 1.0, `exposure ${score} ≤ 1.0`);
  t.match(result.stdout, /✓ PrivateNetwork=/);
  t.match(result.stdout, /✓ RestrictAddressFamilies=~AF_\(INET\|INET6\)/);
  t.match(result.stdout, /✓ IPAddressDeny=/);

  const plain = await runCommand('systemd-analyze', ['security', '--offline=true', `--root=${installedRoot('plain', { isolated: false })}`, SERVICE]);
  t.equal(overallExposure(plain.stdout), overallExposure((await runCommand('systemd-analyze', ['security', '--offline=true', path.join(UNITS, SERVICE)])).stdout),
    'installed without the drop-in it scores as the file itself (the drop-in is what changes the score)');
  const dropIn = unitLines(ISOLATED);
  t.ok(dropIn.includes('ExecStart=') && dropIn.some((l) => /^ExecStart=\/usr\/local\/bin\/xmpp-onion-proxy .*--tor unix:\/run\/tor\/socks$/.test(l)), 'Tor through its Unix socket');
  t.notOk(dropIn.some((l) => l.startsWith('SupplementaryGroups=')), 'no debian-tor group: it would open Tor\'s control socket too');
});

t.test('socket units: one per door, named as the daemon expects, running no code', async (t) => {
  const expected: Record<string, { listen: string; name: string }> = {
    'xmpp-onion-proxy.socket': { listen: '127.0.0.1:5222', name: 'connect-server' },
    'xmpp-onion-proxy-socks.socket': { listen: '127.0.0.1:9055', name: 'socks' },
  };
  for (const [unit, want] of Object.entries(expected)) {
    const lines = unitLines(unit);
    t.same(lines.filter((l) => l.startsWith('ListenStream=')), [`ListenStream=${want.listen}`], `${unit} listens on ${want.listen} only`);
    t.same(lines.filter((l) => l.startsWith('FileDescriptorName=')), [`FileDescriptorName=${want.name}`], `${unit} names its listener ${want.name}`);
    t.ok(lines.includes(`Service=${SERVICE}`), `${unit} starts ${SERVICE}`);
    t.notOk(lines.some((l) => /^Exec/.test(l)), `${unit} runs no command (so a security score would mean nothing)`);
  }
  const config = buildDaemonConfig({}, {}, new Map([['connect-server', 3], ['socks', 4]]));
  t.same(config.proxy.doors.map((d) => [d.door, d.listen]), [['connect-server', { kind: 'fd', fd: 3 }], ['socks', { kind: 'fd', fd: 4 }]], 'the daemon takes both by these names');
});

t.test('systemd-analyze verify: no error and no warning', async (t) => {
  // verify checks that ExecStart= exists; the launcher is only there once installed, so the
  // copies point at a stand-in. Nothing else in them changes.
  const dir = path.join(tmp, 'verify');
  mkdirSync(path.join(dir, `${SERVICE}.d`), { recursive: true });
  const stub = path.join(tmp, 'xmpp-onion-proxy');
  writeFileSync(stub, '#!/bin/sh\n');
  chmodSync(stub, 0o755);
  const copy = (from: string, to: string): void => {
    const text = readFileSync(path.join(UNITS, from), 'utf8');
    if (!from.endsWith('.socket')) t.ok(text.includes(`ExecStart=${LAUNCHER} `), `${from} runs ${LAUNCHER}`);
    writeFileSync(to, text.split(LAUNCHER).join(stub));
  };
  for (const unit of [SERVICE, ...SOCKETS]) copy(unit, path.join(dir, unit));
  const units = [SERVICE, ...SOCKETS].map((u) => path.join(dir, u));

  const plain = await runCommand('systemd-analyze', ['verify', ...units]);
  t.equal(plain.code, 0, 'verify exits 0');
  t.equal(plain.stderr + plain.stdout, '', 'and says nothing');

  copy(ISOLATED, path.join(dir, `${SERVICE}.d`, 'isolated.conf'));
  const isolated = await runCommand('systemd-analyze', ['verify', ...units]);
  t.equal(isolated.code, 0, 'with the network-less drop-in: exits 0');
  t.equal(isolated.stderr + isolated.stdout, '', 'and says nothing');

  // The check has teeth: a misspelt setting is reported.
  writeFileSync(path.join(dir, `${SERVICE}.d`, 'typo.conf'), '[Service]\nProtectSytem=strict\n');
  const typo = await runCommand('systemd-analyze', ['verify', ...units]);
  t.match(typo.stderr, /Unknown key name 'ProtectSytem'|Unknown key 'ProtectSytem'/);
});
