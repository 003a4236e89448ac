// Building elements from text: nothing the API returns is ever parsed as HTML (a rejected
// event's payload is whatever a sender posted), and no inline style is ever set, so the
// Content-Security-Policy needs neither 'unsafe-inline' for scripts nor for styles.

/**
 * h("a", {href: "#/", class: "x"}, "text", child, [more]) -> an element.
 * Attributes whose value is null, undefined or false are left out; true sets an empty one;
 * "on<event>" adds a listener; "dataset" sets data-* attributes.
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/** Append children (nodes, strings, numbers, nested arrays; null and false are skipped). */
export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}
