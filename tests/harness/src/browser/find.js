// Finding an element by what a person reads on the page, for
// `harness::browser::Browser` (find_by_label, find_by_text, click_button,
// click_link), run through WebDriver's Execute Script.
//
// arguments: [how, words], how one of "label", "text", "button", "link".
// Returns the element (WebDriver hands it back as an element reference),
// or {missing: "why, and what the page has instead"}.
//
// Words are compared with runs of white space made one space. An exact
// match wins (the first visible one in document order); otherwise the one
// element whose name contains the words; several such are an error.

const [how, wanted] = arguments;

function normalise(text) {
  return (text || "").replace(/\s+/g, " ").trim();
}

function shown(el) {
  return el.getClientRects().length > 0 && getComputedStyle(el).visibility === "visible";
}

// A label's own words, without the text of the controls inside it.
function labelText(label) {
  const copy = label.cloneNode(true);
  copy.querySelectorAll("input, select, textarea, button").forEach((n) => n.remove());
  return normalise(copy.textContent);
}

// Every name a control is known by: its labels, aria-label, aria-labelledby.
function controlNames(el) {
  const names = [...(el.labels || [])].map(labelText);
  names.push(normalise(el.getAttribute("aria-label")));
  const labelledBy = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
  names.push(normalise(labelledBy.map((id) => document.getElementById(id)?.textContent || "").join(" ")));
  return names.filter((name) => name !== "");
}

function candidates() {
  const found = [];
  const add = (el, names) => names.forEach((name) => found.push({ el, name }));
  if (how === "label") {
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (el.type === "hidden") continue;
      add(el, controlNames(el));
    }
  } else if (how === "button") {
    const selector = "button, input[type=submit], input[type=button], input[type=reset], [role=button]";
    for (const el of document.querySelectorAll(selector)) {
      const words = el.tagName === "INPUT" ? el.value : el.innerText;
      add(el, [normalise(words), normalise(el.getAttribute("aria-label"))].filter((n) => n !== ""));
    }
  } else if (how === "link") {
    for (const el of document.querySelectorAll("a[href]")) {
      add(el, [normalise(el.innerText), normalise(el.getAttribute("aria-label"))].filter((n) => n !== ""));
    }
  } else if (how === "text") {
    // The innermost elements whose text holds the words: none of their
    // children holds them whole.
    for (const el of (document.body || document.documentElement).querySelectorAll("*")) {
      const text = normalise(el.innerText);
      if (!text.includes(wanted)) continue;
      const inner = [...el.children].some((child) => normalise(child.innerText).includes(wanted));
      if (!inner) add(el, [text]);
    }
  } else {
    throw new Error("find.js: unknown way to find " + how);
  }
  return found;
}

const all = candidates();
const visible = all.filter((c) => shown(c.el));
const pool = visible.length > 0 ? visible : all;
const exact = pool.find((c) => c.name === wanted);
if (exact !== undefined) return exact.el;
const partial = [...new Set(pool.filter((c) => c.name.includes(wanted)).map((c) => c.el))];
if (partial.length === 1) return partial[0];
const what = { label: "control labelled", button: "button", link: "link", text: "element with the text" }[how];
const names = [...new Set(all.map((c) => `"${c.name.slice(0, 60)}"`))].slice(0, 30).join(", ");
if (partial.length > 1) {
  return { missing: `${partial.length} matches and none exact for ${what} "${wanted}": ${names}` };
}
return { missing: `no ${what} "${wanted}" on the page; it has ${names || "none"}` };
