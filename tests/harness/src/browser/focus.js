// Sequential focus (the Tab key) for `harness::browser::Browser::tab_order`,
// run through WebDriver's Execute Script. arguments[0] is the step:
//
// "start":  lists every element a keyboard user should reach with Tab
//           ({id, group, element}; the radio buttons of one group are one
//           stop), then puts the focus at the top of the page so that the
//           first Tab goes to the first of them.
// "active": the element that has the focus now ({id, element}), or null
//           when nothing on the page has it (it left the page).
// "finish": removes the starting point and blurs.
//
// Elements are numbered in a WeakMap kept on the window, so that the
// numbers of "start" and "active" agree without touching the page's DOM.

const state = window.__harnessFocus || (window.__harnessFocus = { ids: new WeakMap(), next: 1 });

function idOf(el) {
  if (!state.ids.has(el)) state.ids.set(el, state.next++);
  return state.ids.get(el);
}

function describe(el) {
  let text = el.tagName.toLowerCase();
  if (el.id) text += "#" + el.id;
  for (const attr of ["name", "type", "href"]) {
    const value = el.getAttribute(attr);
    if (value) text += `[${attr}="${value}"]`;
  }
  const words = (el.innerText || el.value || "").replace(/\s+/g, " ").trim();
  if (words) text += ` "${words.slice(0, 40)}"`;
  return text;
}

const START_ID = "__harness_focus_start";
const step = arguments[0];

if (step === "start") {
  const selector =
    'a[href], area[href], button, input, select, textarea, iframe, summary, [tabindex], [contenteditable]:not([contenteditable="false"])';
  const targets = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || el.closest("[inert]") !== null) continue;
    if (el.tagName === "INPUT" && el.type === "hidden") continue;
    const tabindex = el.getAttribute("tabindex");
    if (tabindex !== null && parseInt(tabindex, 10) < 0) continue;
    if (getComputedStyle(el).visibility !== "visible" || el.getClientRects().length === 0) continue;
    const group =
      el.tagName === "INPUT" && el.type === "radio" && el.name
        ? `radio ${el.form ? idOf(el.form) : 0} ${el.name}`
        : `element ${idOf(el)}`;
    targets.push({ id: idOf(el), group, element: describe(el) });
  }
  document.getElementById(START_ID)?.remove();
  const start = document.createElement("span");
  start.id = START_ID;
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
  return targets;
}

if (step === "active") {
  const el = document.activeElement;
  if (el === null || el === document.body || el === document.documentElement || el.id === START_ID) {
    return null;
  }
  return { id: idOf(el), element: describe(el) };
}

if (step === "finish") {
  document.getElementById(START_ID)?.remove();
  if (document.activeElement !== null) document.activeElement.blur();
  return null;
}

throw new Error("focus.js: unknown step " + step);
