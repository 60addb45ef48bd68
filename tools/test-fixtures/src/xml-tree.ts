/**
 * A strict little XML parser for tests: enough of XML 1.0 to prove an SVG is well-formed (one
 * root, nested tags, quoted unique attributes, only the five predefined entities or character
 * references) and to query its structure. No XML package is in the dependency tree, and this is
 * stricter than a browser, which repairs broken markup silently.
 */
export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function decodeText(raw: string, where: string): string {
  if (raw.replace(entity, "").includes("&")) throw new Error(`bad entity in ${where}: ${raw.slice(0, 60)}`);
  if (raw.includes("<")) throw new Error(`raw < in ${where}`);
  return raw.replace(
    entity,
    (match) =>
      ({ "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'" })[match] ??
      String.fromCodePoint(
        match[2] === "x" ? Number.parseInt(match.slice(3, -1), 16) : Number(match.slice(2, -1)),
      ),
  );
}

export function parseXml(source: string): XmlElement {
  const token =
    /<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<\/([A-Za-z_][\w.:-]*)\s*>|<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)/y;
  const attribute = /([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let index = 0;
  if (source.charCodeAt(0) === 0xfeff) index = 1;
  while (index < source.length) {
    token.lastIndex = index;
    const match = token.exec(source);
    if (match === null)
      throw new Error(`malformed markup at offset ${index}: ${source.slice(index, index + 60)}`);
    index = token.lastIndex;
    const [whole, closing, opening, attributeText, selfClosing, text] = match;
    if (text !== undefined) {
      if (stack.length === 0) {
        if (text.trim() !== "") throw new Error(`text outside the root: ${text.slice(0, 40)}`);
      } else {
        stack[stack.length - 1].text += decodeText(text, `<${stack[stack.length - 1].name}>`);
      }
    } else if (closing !== undefined) {
      const open = stack.pop();
      if (open?.name !== closing) throw new Error(`</${closing}> closes <${open?.name ?? "nothing"}>`);
    } else if (opening !== undefined) {
      const attributes: Record<string, string> = {};
      for (const [, name, double, single] of attributeText.matchAll(attribute)) {
        if (name in attributes) throw new Error(`duplicate attribute ${name} on <${opening}>`);
        attributes[name] = decodeText(double ?? single, `${opening}@${name}`);
      }
      const element: XmlElement = { name: opening, attributes, children: [], text: "" };
      if (stack.length > 0) stack[stack.length - 1].children.push(element);
      else if (root === undefined) root = element;
      else throw new Error("a second root element");
      if (selfClosing !== "/") stack.push(element);
    } else if (whole.startsWith("<?") && root !== undefined) {
      throw new Error("processing instruction after the root");
    }
  }
  if (stack.length > 0) throw new Error(`<${stack[stack.length - 1].name}> is never closed`);
  if (root === undefined) throw new Error("no root element");
  return root;
}

/** Every element named `name` in document order. */
export function findAll(element: XmlElement, name: string): XmlElement[] {
  return [
    ...(element.name === name ? [element] : []),
    ...element.children.flatMap((child) => findAll(child, name)),
  ];
}
