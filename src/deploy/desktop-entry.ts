import { DeployError } from './deploy-error.js';

/**
 * An XDG autostart entry (Desktop Entry Specification 1.5) that GNOME starts at every login.
 * Exec arguments with characters the specification reserves (a space, say) are double-quoted and
 * `%` is doubled. Arguments that would need escaping inside quotes (`"`, `` ` ``, `$`, `\`) or
 * a line break are refused: the string and quoting escape layers stack, and GLib rejects some
 * escapes, so a path that needs them is better moved than escaped.
 */
export function autostartEntry(options: { name: string; comment: string; exec: readonly string[] }): string {
  const lines = [
    '[Desktop Entry]',
    'Type=Application',
    `Name=${oneLine(options.name)}`,
    `Comment=${oneLine(options.comment)}`,
    `Exec=${options.exec.map(execArgument).join(' ')}`,
    'Terminal=false',
    'NoDisplay=true',
    'X-GNOME-Autostart-enabled=true',
  ];
  return `${lines.join('\n')}\n`;
}

const PLAIN = /^[A-Za-z0-9_/.:=@+,-]+$/;

function execArgument(arg: string): string {
  if (/["`$\\\n\r]/.test(arg)) throw new DeployError('XOP_ERR_DESKTOP_ENTRY', `cannot put ${JSON.stringify(arg)} in an autostart entry: move it to a path without quotes, $, backslashes or line breaks`);
  const doubled = arg.replace(/%/g, '%%');
  return PLAIN.test(doubled) ? doubled : `"${doubled}"`;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
