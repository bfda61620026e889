import { DeployError } from './deploy-error.js';
import { appendIndented, attribute, childElements, element, removeIndented, setText, textOf, type XmlDocument, type XmlElement } from './xml-tree.js';

/**
 * libpurple's accounts.xml (Pidgin, finch): `<account version='1.0'>` holding one `<account>`
 * per account, each with `<protocol>`, `<name>` (the JID and resource for XMPP), `<settings>`
 * (the protocol's own, no `ui` attribute) of `<setting name type>value</setting>`, settings per
 * user interface (`<settings ui='gtk-gaim'>`, `ui='gnt-purple'`), and an optional `<proxy>`.
 * Element depths below are those libpurple writes: root 0, account 1, settings 2, setting 3.
 */
export const XMPP_PROTOCOL = 'prpl-jabber';

export interface PurpleAccount {
  readonly element: XmlElement;
  readonly protocol: string;
  /** `<name>`: for XMPP the JID, usually with a resource (`alice@example.org/Home`). */
  readonly name: string;
}

export type SettingType = 'string' | 'int' | 'bool';

export interface Setting {
  readonly type: string;
  readonly value: string;
}

/** What `<proxy>` says; absent means libpurple's "use the global proxy settings". */
export interface ProxySettings {
  readonly type: string;
  readonly host?: string;
  readonly port?: string;
  readonly hasCredentials: boolean;
}

export class AccountsFileError extends DeployError {
  constructor(message: string) {
    super('XOP_ERR_ACCOUNTS_FILE', message);
  }
}

export function listAccounts(doc: XmlDocument): PurpleAccount[] {
  if (doc.root.name !== 'account') throw new AccountsFileError(`the root element is <${doc.root.name}>, not libpurple's <account version='1.0'>`);
  return childElements(doc.root, 'account').map((el) => ({
    element: el,
    protocol: childText(el, 'protocol') ?? '',
    name: childText(el, 'name') ?? '',
  }));
}

export function isXmpp(account: PurpleAccount): boolean {
  return account.protocol === XMPP_PROTOCOL;
}

/** `alice@example.org/Home` → `alice@example.org` (lower case): what users type for --account. */
export function bareJid(name: string): string {
  const slash = name.indexOf('/');
  return (slash < 0 ? name : name.slice(0, slash)).toLowerCase();
}

export function getSetting(account: PurpleAccount, name: string): Setting | undefined {
  const settings = protocolSettings(account, false);
  const el = settings && findSetting(settings, name);
  return el ? { type: attribute(el, 'type') ?? 'string', value: textOf(el) } : undefined;
}

/** Writes the setting (creating `<settings>` if needed); true if the file changed. */
export function setSetting(account: PurpleAccount, name: string, type: SettingType, value: string): boolean {
  const settings = protocolSettings(account, true)!;
  const existing = findSetting(settings, name);
  if (existing) {
    if (attribute(existing, 'type') === type && textOf(existing) === value) return false;
    existing.attributes = [['name', name], ['type', type]];
    setText(existing, value);
    return true;
  }
  appendIndented(settings, element('setting', [['name', name], ['type', type]], value), 2);
  return true;
}

export function removeSetting(account: PurpleAccount, name: string): boolean {
  const settings = protocolSettings(account, false);
  const existing = settings && findSetting(settings, name);
  if (!settings || !existing) return false;
  removeIndented(settings, existing);
  return true;
}

export function getProxy(account: PurpleAccount): ProxySettings | undefined {
  const proxy = childElements(account.element, 'proxy')[0];
  if (!proxy) return undefined;
  const host = childText(proxy, 'host');
  const port = childText(proxy, 'port');
  return {
    type: childText(proxy, 'type') ?? 'global',
    ...(host !== undefined ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    hasCredentials: childElements(proxy, 'username').length > 0 || childElements(proxy, 'password').length > 0,
  };
}

/**
 * Replaces the account's `<proxy>` with exactly this type, host and port (no credentials);
 * true if the file changed.
 */
export function setProxy(account: PurpleAccount, wanted: { type: string; host?: string; port?: number }): boolean {
  const current = getProxy(account);
  const port = wanted.port === undefined ? undefined : String(wanted.port);
  if (current && current.type === wanted.type && current.host === wanted.host && current.port === port && !current.hasCredentials) return false;
  const proxy = element('proxy');
  appendIndented(proxy, element('type', [], wanted.type), 2);
  if (wanted.host !== undefined) appendIndented(proxy, element('host', [], wanted.host), 2);
  if (port !== undefined) appendIndented(proxy, element('port', [], port), 2);
  const old = childElements(account.element, 'proxy')[0];
  if (old) account.element.children[account.element.children.indexOf(old)] = proxy;
  else appendIndented(account.element, proxy, 1);
  return true;
}

function protocolSettings(account: PurpleAccount, create: boolean): XmlElement | undefined {
  const found = childElements(account.element, 'settings').find((el) => attribute(el, 'ui') === undefined);
  if (found || !create) return found;
  const settings = element('settings');
  appendIndented(account.element, settings, 1);
  return settings;
}

function findSetting(settings: XmlElement, name: string): XmlElement | undefined {
  return childElements(settings, 'setting').find((el) => attribute(el, 'name') === name);
}

function childText(parent: XmlElement, name: string): string | undefined {
  const el = childElements(parent, name)[0];
  return el ? textOf(el) : undefined;
}
