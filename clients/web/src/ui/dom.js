/** A tiny DOM helper: `h('button', { onclick, class: 'primary' }, 'Save')`. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else if (name === 'value') element.value = value;
    else if (name === 'checked') element.checked = Boolean(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replace the contents of `root`. */
export function mount(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter(Boolean));
}

/** The values of a form's named fields. */
export function formValues(form) {
  const values = {};
  for (const element of form.elements) {
    if (!element.name) continue;
    if (element.type === 'checkbox') values[element.name] = element.checked;
    else if (element.type === 'radio') {
      if (element.checked) values[element.name] = element.value;
    } else values[element.name] = element.value;
  }
  return values;
}

/** Words for levels, calm and plain. */
export const LEVEL_WORDS = { no: 'No', ask: 'Ask first', yes: 'Yes' };
export const KIND_WORDS = {
  limit: 'Limit',
  permission: 'Permission',
  preference: 'Preference',
  signal: 'Safe word or signal',
  'plan-step': 'Crisis plan step',
};

export function levelChip(level) {
  return h('span', { class: `chip level-${level}`, 'data-level': level }, LEVEL_WORDS[level]);
}
