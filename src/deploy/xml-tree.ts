import { SaxesParser } from 'saxes';
import { DeployError } from './deploy-error.js';

/**
 * A small document tree for settings files such as libpurple's accounts.xml: parsed with saxes
 * (strict, no DTD, entities never expanded) and written back with the original whitespace, so a
 * rewrite changes only what was edited. Not a general XML library: no namespaces, no DOCTYPE.
 */
export interface XmlElement {
  readonly kind: 'element';
  readonly name: string;
  /** In document order. */
  attributes: Array<[string, string]>;
  children: XmlNode[];
  /** Written as `<name/>` when it has no children. */
  selfClosing: boolean;
}

export type XmlNode =
  | XmlElement
  | { readonly kind: 'text'; text: string }
  | { readonly kind: 'cdata'; text: string }
  | { readonly kind: 'comment'; text: string };

export interface XmlDocument {
  readonly declaration?: { readonly version: string; readonly encoding?: string; readonly standalone?: string };
  /** Whitespace and comments around the root element. */
  readonly before: XmlNode[];
  readonly root: XmlElement;
  readonly after: XmlNode[];
}

export class XmlTreeError extends DeployError {
  constructor(message: string) {
    super('XOP_ERR_XML', message);
  }
}

export function parseXml(text: string): XmlDocument {
  const parser = new SaxesParser({ position: true });
  let declaration: XmlDocument['declaration'];
  const before: XmlNode[] = [];
  const after: XmlNode[] = [];
  let root: XmlElement | undefined;
  const open: XmlElement[] = [];
  let failure: Error | undefined;

  const place = (node: XmlNode): void => {
    const parent = open.at(-1);
    if (parent) parent.children.push(node);
    else (root ? after : before).push(node);
  };
  parser.on('error', (error) => {
    failure ??= error;
  });
  parser.on('xmldecl', (decl) => {
    declaration = {
      version: decl.version ?? '1.0',
      ...(decl.encoding !== undefined ? { encoding: decl.encoding } : {}),
      ...(decl.standalone !== undefined ? { standalone: decl.standalone } : {}),
    };
  });
  parser.on('doctype', () => {
    failure ??= new XmlTreeError('a DOCTYPE is not expected in this file');
  });
  parser.on('processinginstruction', () => {
    failure ??= new XmlTreeError('a processing instruction is not expected in this file');
  });
  parser.on('text', (text) => place({ kind: 'text', text }));
  parser.on('cdata', (text) => place({ kind: 'cdata', text }));
  parser.on('comment', (text) => place({ kind: 'comment', text }));
  parser.on('opentag', (tag) => {
    const element: XmlElement = { kind: 'element', name: tag.name, attributes: Object.entries(tag.attributes as Record<string, string>), children: [], selfClosing: tag.isSelfClosing };
    if (open.length === 0) root = element;
    else place(element);
    open.push(element);
  });
  parser.on('closetag', () => {
    open.pop();
  });
  parser.write(text).close();
  if (failure) throw failure instanceof XmlTreeError ? failure : new XmlTreeError(`not well-formed XML: ${failure.message}`);
  if (!root) throw new XmlTreeError('no root element');
  return { ...(declaration ? { declaration } : {}), before, root, after };
}

export function serializeXml(doc: XmlDocument): string {
  let out = '';
  if (doc.declaration) {
    const { version, encoding, standalone } = doc.declaration;
    // libpurple writes its files this way (with the space before "?>").
    out += `<?xml version='${version}'${encoding ? ` encoding='${encoding}'` : ''}${standalone ? ` standalone='${standalone}'` : ''} ?>`;
  }
  for (const node of doc.before) out += serializeNode(node);
  out += serializeNode(doc.root);
  for (const node of doc.after) out += serializeNode(node);
  return out;
}

function serializeNode(node: XmlNode): string {
  switch (node.kind) {
    case 'text':
      return escapeText(node.text);
    case 'cdata':
      return `<![CDATA[${node.text.split(']]>').join(']]]]><![CDATA[>')}]]>`;
    case 'comment':
      return `<!--${node.text}-->`;
    case 'element': {
      const attributes = node.attributes.map(([name, value]) => ` ${name}='${escapeAttribute(value)}'`).join('');
      if (node.children.length === 0 && node.selfClosing) return `<${node.name}${attributes}/>`;
      return `<${node.name}${attributes}>${node.children.map(serializeNode).join('')}</${node.name}>`;
    }
  }
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttribute(text: string): string {
  return escapeText(text).replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

// ---------------------------------------------------------------------------------------
// Editing helpers that keep the file's indentation.

export function element(name: string, attributes: Array<[string, string]> = [], text?: string): XmlElement {
  return { kind: 'element', name, attributes, children: text === undefined || text === '' ? [] : [{ kind: 'text', text }], selfClosing: false };
}

export function childElements(parent: XmlElement, name?: string): XmlElement[] {
  return parent.children.filter((node): node is XmlElement => node.kind === 'element' && (name === undefined || node.name === name));
}

export function attribute(el: XmlElement, name: string): string | undefined {
  return el.attributes.find(([key]) => key === name)?.[1];
}

/** The element's text content (text and CDATA children, concatenated). */
export function textOf(el: XmlElement): string {
  return el.children.map((node) => (node.kind === 'text' || node.kind === 'cdata' ? node.text : node.kind === 'element' ? textOf(node) : '')).join('');
}

export function setText(el: XmlElement, text: string): void {
  el.children = text === '' ? [] : [{ kind: 'text', text }];
}

/**
 * Appends `child` as the last element of `parent`, on its own line, indented like its
 * siblings (or one tab deeper than the parent at `depth` when it has none).
 */
export function appendIndented(parent: XmlElement, child: XmlElement, depth: number): void {
  const elements = childElements(parent);
  const last = elements.at(-1);
  if (last) {
    const at = parent.children.indexOf(last);
    const gap = parent.children[at - 1];
    const indent = gap?.kind === 'text' && /^\s+$/.test(gap.text) ? gap.text : `\n${'\t'.repeat(depth + 1)}`;
    parent.children.splice(at + 1, 0, { kind: 'text', text: indent }, child);
    return;
  }
  const onlyWhitespace = parent.children.every((node) => node.kind === 'text' && /^\s*$/.test(node.text));
  if (onlyWhitespace) {
    parent.children = [{ kind: 'text', text: `\n${'\t'.repeat(depth + 1)}` }, child, { kind: 'text', text: `\n${'\t'.repeat(depth)}` }];
  } else {
    parent.children.push(child);
  }
}

/** Removes `child` and the whitespace that indented it. */
export function removeIndented(parent: XmlElement, child: XmlElement): void {
  const at = parent.children.indexOf(child);
  if (at < 0) return;
  const gap = parent.children[at - 1];
  const start = gap?.kind === 'text' && /^\s+$/.test(gap.text) ? at - 1 : at;
  parent.children.splice(start, at - start + 1);
  if (childElements(parent).length === 0 && parent.children.every((node) => node.kind === 'text' && /^\s*$/.test(node.text))) parent.children = [];
}
