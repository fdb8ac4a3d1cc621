// Form pieces shared by the editing views: labelled fields, JSON text areas, key/value rows,
// and the API's 422 `details` shown beside the inputs they name.

import { clear, errorBox, fill, h, mono } from "../dom.js";

/** A labelled field; `hint` is text or nodes under the input. */
export function formField(label, input, hint, attrs = {}) {
  return h(
    "div",
    { class: ["form-field", attrs.class], "data-field": input.name || null },
    h("label", { for: input.id }, label),
    input,
    hint ? h("p", { class: "hint", id: `${input.id}-hint` }, hint) : null,
  );
}

/** A `<textarea>` for JSON: empty means "none". `read()` answers `{ok, value}`. */
export function jsonArea(id, name, value, rows = 6) {
  const area = h("textarea", { id, name, rows, spellcheck: "false", class: "code-input", autocomplete: "off" });
  area.value = value === null || value === undefined ? "" : JSON.stringify(value, null, 2);
  return area;
}

/** Parses a JSON text area: `{value}` (null when empty) or `{error}`. */
export function readJson(area) {
  const text = area.value.trim();
  if (!text) return { value: null };
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { error: `is not valid JSON (${e.message})` };
  }
}

/** Removes the field errors shown by `showFieldErrors`. */
export function clearFieldErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/**
 * Shows each `details[]` entry of a 422 beside the input it names (`templates.member.created`
 * goes to the `templates` field); answers the entries no input claimed, for the general box.
 */
export function showFieldErrors(form, err) {
  clearFieldErrors(form);
  let first = null;
  const unclaimed = [];
  for (const d of err.details || []) {
    const field = String(d.field || "");
    const name = field.split(/[.[]/)[0];
    const box = name ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
    if (!box) {
      unclaimed.push(d);
      continue;
    }
    const input = box.querySelector("input, select, textarea");
    const msg = h("p", { class: "field-error", id: `${name}-error-${box.querySelectorAll(".field-error").length}` }, field === name ? d.message : [mono(field.slice(name.length).replace(/^\./, "")), ": ", d.message]);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", msg.id);
      first = first || input;
    }
    box.append(msg);
  }
  if (first) first.focus();
  return unclaimed;
}

/** One field error shown locally (before calling the API), as `showFieldErrors` would. */
export function localError(form, name, message) {
  return showFieldErrors(form, { details: [{ field: name, message }] });
}

/** The error box for a failed save, plus field errors beside their inputs. */
export function reportError(form, errors, err, what) {
  fill(errors, errorBox(err, what));
  showFieldErrors(form, err);
}

/**
 * Editable key/value rows (custom headers, templates). `multiline` makes the value a text
 * area. `read()` answers an object; `onChange` fires on every edit.
 */
export function pairsEditor({ id, name, entries, keyLabel, valueLabel, keyPlaceholder, valuePlaceholder, multiline = false, addText = "Add", onChange = () => {} }) {
  const list = h("div", { class: "pairs", id });
  let n = 0;
  const addRow = (k = "", v = "") => {
    const i = n++;
    const key = h("input", { id: `${id}-key-${i}`, type: "text", value: k, placeholder: keyPlaceholder, spellcheck: "false", autocomplete: "off", "aria-label": `${keyLabel} ${i + 1}`, class: "pair-key" });
    const value = multiline
      ? h("textarea", { id: `${id}-value-${i}`, rows: 3, spellcheck: "false", placeholder: valuePlaceholder, "aria-label": `${valueLabel} ${i + 1}`, class: "pair-value code-input" })
      : h("input", { id: `${id}-value-${i}`, type: "text", placeholder: valuePlaceholder, spellcheck: "false", autocomplete: "off", "aria-label": `${valueLabel} ${i + 1}`, class: "pair-value" });
    value.value = v;
    const remove = h("button", { type: "button", class: "btn btn-small", "aria-label": `Remove ${keyLabel.toLowerCase()} ${i + 1}` }, "Remove");
    const row = h("div", { class: ["pair", multiline ? "pair-multi" : null] }, key, value, remove);
    remove.addEventListener("click", () => {
      row.remove();
      onChange();
      add.focus();
    });
    key.addEventListener("input", onChange);
    value.addEventListener("input", onChange);
    list.append(row);
    return key;
  };
  const add = h("button", { type: "button", class: "btn btn-small", id: `${id}-add` }, addText);
  add.addEventListener("click", () => {
    addRow().focus();
    onChange();
  });
  for (const [k, v] of Object.entries(entries || {})) addRow(k, v);
  const el = h("div", { class: "pairs-editor", "data-field": name }, list, add);
  return {
    el,
    read() {
      const out = {};
      for (const row of list.children) {
        const k = row.querySelector(".pair-key").value.trim();
        if (k) out[k] = row.querySelector(".pair-value").value;
      }
      return out;
    },
    clear() {
      clear(list);
    },
  };
}

/** Equality of two JSON values whatever their keys' order, to send only what changed. */
export function same(a, b) {
  return canonical(a ?? null) === canonical(b ?? null);
}

function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

/** A function that runs `fn` once `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
