// Accessibility checks on the page as the browser rendered it, run by
// `harness::browser::Browser::accessibility` through WebDriver's Execute
// Script (the body of a function: `return` hands the result back).
//
// Returns { findings: [{rule, element, detail}], checked: {...} }, where
// rule is one of "lang", "title", "label", "alt", "contrast". Tab order is
// checked from Rust with real Tab key presses (see `tab_targets` below and
// `Browser::tab_order`).
//
// Contrast follows WCAG 2.2, 1.4.3 (Contrast, Minimum): the relative
// luminance of each colour, (L1 + 0.05) / (L2 + 0.05), at least 4.5:1 for
// normal text and 3:1 for large text (24 px, or 18.66 px bold). The
// background is the element's own background colour, or the first
// non-transparent one walking up, with semi-transparent layers blended
// over each other and over the page's white. Text over a background image
// or gradient cannot be measured this way and is counted as unmeasured.

const findings = [];
const checked = { controls: 0, images: 0, texts: 0, unmeasured_texts: 0 };

// A short, readable name for an element: tag#id[name][type].class
function describe(el) {
  let text = el.tagName.toLowerCase();
  if (el.id) text += "#" + el.id;
  for (const attr of ["name", "type"]) {
    const value = el.getAttribute(attr);
    if (value) text += `[${attr}="${value}"]`;
  }
  if (!el.id && el.classList.length > 0) text += "." + [...el.classList].join(".");
  return text;
}

function normalise(text) {
  return (text || "").replace(/\s+/g, " ").trim();
}

// A label's own words, without the text of the controls inside it (a
// wrapping label around a <select> would otherwise "read" its options).
function labelText(label) {
  const copy = label.cloneNode(true);
  copy.querySelectorAll("input, select, textarea, button").forEach((n) => n.remove());
  return normalise(copy.textContent);
}

// --- the document: lang and title ---------------------------------------

if (normalise(document.documentElement.getAttribute("lang")) === "") {
  findings.push({ rule: "lang", element: "html", detail: "<html> has no lang attribute" });
}
if (normalise(document.title) === "") {
  findings.push({ rule: "title", element: "head", detail: "the page has no <title> (or an empty one)" });
}

// --- form controls have a label -------------------------------------------

const SELF_NAMED_INPUTS = new Set(["hidden", "submit", "button", "reset", "image"]);
for (const el of document.querySelectorAll("input, select, textarea")) {
  const type = (el.getAttribute("type") || "").toLowerCase();
  if (el.tagName === "INPUT" && SELF_NAMED_INPUTS.has(type)) continue;
  // A control that is not rendered (the hidden attribute, display: none)
  // is not in the accessibility tree: nobody reads or reaches it.
  if (el.getClientRects().length === 0) continue;
  checked.controls += 1;
  const byLabel = [...(el.labels || [])].some((label) => labelText(label) !== "");
  const byAriaLabel = normalise(el.getAttribute("aria-label")) !== "";
  const byLabelledBy = (el.getAttribute("aria-labelledby") || "")
    .split(/\s+/)
    .filter(Boolean)
    .some((id) => {
      const target = document.getElementById(id);
      return target !== null && normalise(target.textContent) !== "";
    });
  if (!byLabel && !byAriaLabel && !byLabelledBy) {
    findings.push({
      rule: "label",
      element: describe(el),
      detail: "no <label for>, wrapping <label>, aria-label or aria-labelledby",
    });
  }
}

// --- images have alt (alt="" marks a decorative one, which is fine) -------

for (const el of document.querySelectorAll("img, input[type=image i], area[href]")) {
  checked.images += 1;
  if (!el.hasAttribute("alt")) {
    findings.push({ rule: "alt", element: describe(el), detail: "no alt attribute" });
  }
}

// --- text contrast -----------------------------------------------------------

// A CSS colour as [r, g, b, a] with r, g, b in 0..255 and a in 0..1.
// Chromium's computed colours are rgb()/rgba() for sRGB colours; anything
// else (color(), oklch(), ...) is painted on a 1x1 canvas and read back.
const canvas = document.createElement("canvas");
canvas.width = 1;
canvas.height = 1;
const paint = canvas.getContext("2d", { willReadFrequently: true });
function parseColour(css) {
  const match = css.match(/^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$/);
  if (match) {
    let alpha = 1;
    if (match[4] !== undefined) {
      alpha = match[4].endsWith("%") ? parseFloat(match[4]) / 100 : parseFloat(match[4]);
    }
    return [parseFloat(match[1]), parseFloat(match[2]), parseFloat(match[3]), alpha];
  }
  paint.clearRect(0, 0, 1, 1);
  paint.fillStyle = css;
  paint.fillRect(0, 0, 1, 1);
  const [r, g, b, a] = paint.getImageData(0, 0, 1, 1).data;
  return [r, g, b, a / 255];
}

// `top` (with its alpha) painted over the opaque colour `under`.
function blend(top, under) {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
}

// WCAG relative luminance of an opaque sRGB colour.
function luminance([r, g, b]) {
  const linear = (channel) => {
    const c = channel / 255;
    return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

function contrast(one, other) {
  const [light, dark] = [luminance(one), luminance(other)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

// The opaque colour behind `el`'s text, or null when an image or gradient
// is in the way. Walks up until an opaque background colour, then blends
// the semi-transparent ones met on the way over it (the page is white
// where nothing is opaque).
function backgroundOf(el) {
  const layers = [];
  for (let node = el; node !== null; node = node.parentElement) {
    const style = getComputedStyle(node);
    if (style.backgroundImage !== "none") return null;
    const colour = parseColour(style.backgroundColor);
    if (colour[3] > 0) layers.push(colour);
    if (colour[3] >= 1) break;
  }
  let result = [255, 255, 255, 1];
  for (const layer of layers.reverse()) result = blend(layer, result);
  return result;
}

function isShown(el) {
  const style = getComputedStyle(el);
  if (style.visibility === "hidden" || style.visibility === "collapse") return false;
  if (parseFloat(style.opacity) === 0) return false;
  return el.getClientRects().length > 0;
}

const SKIPPED = "script, style, noscript, template, select, option, textarea, :disabled";
const seen = new Set();
const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
  const el = node.parentElement;
  if (el === null || seen.has(el) || normalise(node.data) === "") continue;
  seen.add(el);
  if (el.closest(SKIPPED) !== null || !isShown(el)) continue;
  const background = backgroundOf(el);
  if (background === null) {
    checked.unmeasured_texts += 1;
    continue;
  }
  checked.texts += 1;
  const style = getComputedStyle(el);
  const text = blend(parseColour(style.color), background);
  const size = parseFloat(style.fontSize);
  const bold = parseInt(style.fontWeight, 10) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  const needed = large ? 3 : 4.5;
  const ratio = contrast(text, background);
  if (ratio < needed) {
    const rgb = (c) => `rgb(${c.slice(0, 3).map(Math.round).join(", ")})`;
    const words = normalise(el.textContent);
    findings.push({
      rule: "contrast",
      element: describe(el),
      detail:
        `contrast ${ratio.toFixed(2)}:1, needs ${needed}:1 (${large ? "large" : "normal"} text, ` +
        `${size}px): ${rgb(text)} on ${rgb(background)}, text "${words.slice(0, 60)}"`,
    });
  }
}

return { findings, checked };
