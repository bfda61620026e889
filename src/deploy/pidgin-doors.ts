import type { DoorAddress, DoorKind } from './doors.js';
import { getProxy, getSetting, removeSetting, setProxy, setSetting, type PurpleAccount, type ProxySettings } from './purple-accounts.js';

/** One setting of one account that `pidgin configure` changed (or would change). */
export interface SettingChange {
  readonly setting: string;
  readonly from: string;
  readonly to: string;
}

/**
 * XMPP's STARTTLS client port. With `require_tls` libpurple speaks STARTTLS, and the SOCKS door
 * picks its policy by the port asked for (5223 would mean direct TLS; others are refused).
 */
const XMPP_PORT = 5222;

/**
 * Sets one XMPP account for one of the daemon's doors; returns what changed (nothing when it
 * already was). Always: `connection_security` = `require_tls`, written out because libpurple's
 * built-in default is the different string `require_starttls`, and no plaintext login.
 * - SOCKS door: per-account proxy `tor` at the door (libpurple then does no DNS or SRV lookup
 *   and sends the domain as a SOCKS5 host name), no connect server, so the certificate is
 *   checked against the JID's domain.
 * - connect-server door: connect server and port of the door, proxy `none` (a global Tor proxy,
 *   as on Tails, would carry 127.0.0.1 to Tor, which refuses private addresses).
 */
export function applyDoor(account: PurpleAccount, door: DoorAddress): SettingChange[] {
  const changes: SettingChange[] = [];
  const set = (name: string, type: 'string' | 'int' | 'bool', value: string, shown = value): void => {
    const before = getSetting(account, name);
    if (setSetting(account, name, type, value)) changes.push({ setting: name, from: before ? showSetting(name, before.value) : '(not set)', to: shown });
  };
  set('connection_security', 'string', 'require_tls');
  if (getSetting(account, 'auth_plain_in_clear')?.value === '1') set('auth_plain_in_clear', 'bool', '0', 'no');
  const proxyBefore = getProxy(account);
  if (door.kind === 'socks') {
    const server = getSetting(account, 'connect_server');
    if (server && server.value !== '' && removeSetting(account, 'connect_server')) {
      changes.push({ setting: 'connect_server', from: server.value, to: '(none: the JID\'s domain)' });
    }
    const port = getSetting(account, 'port');
    if (port && port.value !== String(XMPP_PORT)) set('port', 'int', String(XMPP_PORT));
    if (setProxy(account, { type: 'tor', host: door.host, port: door.port })) changes.push({ setting: 'proxy', from: showProxy(proxyBefore), to: `tor ${door.host}:${door.port}` });
  } else {
    set('connect_server', 'string', door.host);
    set('port', 'int', String(door.port));
    if (setProxy(account, { type: 'none' })) changes.push({ setting: 'proxy', from: showProxy(proxyBefore), to: 'none (direct to the door)' });
  }
  return changes;
}

/**
 * Which door, if any, the account is fully set for; otherwise what is missing for the door it
 * looks meant for (the SOCKS door when it has a `tor` proxy or no connect server). Works on a copy.
 */
export function doorStatus(account: PurpleAccount, doors: readonly DoorAddress[]): { readonly door?: DoorAddress; readonly missing: SettingChange[]; readonly closest?: DoorAddress } {
  let closest: { door: DoorAddress; missing: SettingChange[] } | undefined;
  for (const door of doors) {
    const missing = applyDoor(copyOf(account), door);
    if (missing.length === 0) return { door, missing };
    if (!closest || likelyDoor(account) === door.kind) closest = { door, missing };
  }
  return closest ? { missing: closest.missing, closest: closest.door } : { missing: [] };
}

export function describeChanges(changes: readonly SettingChange[]): string[] {
  return changes.map((change) => `${change.setting}: ${change.from} → ${change.to}`);
}

function likelyDoor(account: PurpleAccount): DoorKind {
  const server = getSetting(account, 'connect_server')?.value ?? '';
  return getProxy(account)?.type === 'tor' || server === '' ? 'socks' : 'connect-server';
}

function copyOf(account: PurpleAccount): PurpleAccount {
  return { ...account, element: structuredClone(account.element) };
}

function showSetting(name: string, value: string): string {
  if (value === '') return '(empty)';
  return name === 'auth_plain_in_clear' ? (value === '1' ? 'yes' : 'no') : value;
}

function showProxy(proxy: ProxySettings | undefined): string {
  if (!proxy || proxy.type === 'global') return "global (Pidgin's proxy preferences)";
  const where = proxy.host ? ` ${proxy.host}${proxy.port ? `:${proxy.port}` : ''}` : '';
  return `${proxy.type}${where}${proxy.hasCredentials ? ' with a user name/password' : ''}`;
}
