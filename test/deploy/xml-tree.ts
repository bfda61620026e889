// The settings-file tree: what it reads comes back byte for byte, what is edited keeps the
// file's indentation, and what is not a plain settings file is refused.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { appendIndented, childElements, element, parseXml, removeIndented, serializeXml, textOf, XmlTreeError } from '../../src/deploy/xml-tree.js';

const SAMPLE = readFileSync(fileURLToPath(new URL('../fixtures/purple/accounts.xml', import.meta.url)), 'utf8');

const ROUND_TRIPS: ReadonlyArray<{ name: string; xml: string }> = [
  { name: "libpurple's accounts.xml", xml: SAMPLE },
  { name: 'entities in text and attributes', xml: "<a x='&apos;&amp;&lt;&quot;'>&lt;b&gt; &amp; ü 🧅</a>" },
  { name: 'self-closing and empty elements', xml: '<a><b/><c></c></a>' },
  { name: 'comments and CDATA', xml: "<?xml version='1.0' encoding='UTF-8' ?><!-- before --><a><!-- in --><![CDATA[<raw> & ]]></a><!-- after -->\n" },
  { name: 'attribute order', xml: "<a z='1' a='2' m='3'/>" },
];

for (const { name, xml } of ROUND_TRIPS) {
  t.test(`round trip: ${name}`, async (t) => {
    const once = serializeXml(parseXml(xml));
    t.equal(serializeXml(parseXml(once)), once, 'a fixed point');
    t.same(parseXml(once), parseXml(xml), 'the same tree');
  });
}

t.test('byte for byte for the files libpurple writes (single quotes, escaped text)', async (t) => {
  t.equal(serializeXml(parseXml(SAMPLE)), SAMPLE);
});

t.test('refused: not well-formed, DOCTYPE (no entity expansion), processing instructions, no root', async (t) => {
  const bad = [
    '<a><b></a>',
    '<!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>',
    '<a><?php echo 1 ?></a>',
    '',
    '<a/><b/>',
  ];
  for (const xml of bad) t.throws(() => parseXml(xml), XmlTreeError, JSON.stringify(xml));
  try {
    parseXml('<a>\n<b></a>');
  } catch (error) {
    t.match((error as Error).message, /^not well-formed XML: 2:/, 'the message says where');
    t.equal((error as XmlTreeError).code, 'XOP_ERR_XML');
  }
});

t.test('appendIndented and removeIndented keep the indentation of siblings', async (t) => {
  const doc = parseXml('<r>\n\t<list>\n\t\t<i>1</i>\n\t</list>\n\t<empty/>\n</r>\n');
  const [list, empty] = childElements(doc.root);
  appendIndented(list!, element('i', [['n', "it's"]], '2'), 1);
  appendIndented(empty!, element('i', [], '3'), 1);
  t.equal(serializeXml(doc), "<r>\n\t<list>\n\t\t<i>1</i>\n\t\t<i n='it&apos;s'>2</i>\n\t</list>\n\t<empty>\n\t\t<i>3</i>\n\t</empty>\n</r>\n");
  removeIndented(list!, childElements(list!)[0]!);
  removeIndented(empty!, childElements(empty!)[0]!);
  t.equal(serializeXml(doc), "<r>\n\t<list>\n\t\t<i n='it&apos;s'>2</i>\n\t</list>\n\t<empty/>\n</r>\n");
  t.equal(textOf(childElements(list!)[0]!), '2');
});
