// The event catalog: every type with its schema and example, creating and editing a type, and
// emitting a test event from a type's example through the real POST /api/v1/events.

import { del, get, patch, post } from "../api.js";
import { badge, clear, confirmDialog, emptyState, errorBox, fields, fill, h, jsonView, link, loading, mono, table, timeEl } from "../dom.js";
import { clearFieldErrors, formField, jsonArea, localError, readJson, reportError } from "./forms.js";

/** Whether the caller may emit events (admin, editor and publisher roles). */
function canEmit(me) {
  return me && me.role !== "viewer";
}

export function list(root, route, ctx) {
  ctx.title("Event types");
  const create = ctx.canWrite ? h("a", { class: "btn btn-primary", href: "#/event-types/new", id: "new-event-type" }, "New event type") : null;
  const body = h("div", {}, loading("Loading the catalog…"));
  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Event types"), h("p", { class: "muted" }, "The catalog: what events exist, the schema their data must satisfy, and an example.")), h("div", { class: "page-actions" }, create)),
    body,
  );
  (async () => {
    try {
      const page = await get("/api/v1/event-types", { limit: 1000 });
      if (!page.data.length) {
        fill(body, emptyState("The catalog is empty.", "Describe the events you send: webhooks then pick from them, and data is checked against the schema.", create ? h("a", { class: "btn btn-primary", href: "#/event-types/new" }, "Add the first type") : null));
        return;
      }
      const rows = page.data.map((t) =>
        h(
          "tr",
          { "data-id": t.name },
          h("td", {}, link(["event-types", t.name], t.name, { class: "strong mono" })),
          h("td", {}, t.description || h("span", { class: "muted" }, "—")),
          h("td", {}, t.schema ? "yes" : h("span", { class: "muted" }, "no")),
          h("td", {}, t.example !== null && t.example !== undefined ? "yes" : h("span", { class: "muted" }, "no")),
          h("td", { class: "opt" }, t.built_in ? badge("built-in", t.created_at ? "built-in, customised" : "built-in") : "custom"),
        ),
      );
      fill(body, table("Event types", ["Type", "Description", "Schema", "Example", { text: "Origin", class: "opt" }], rows).el);
    } catch (err) {
      fill(body, errorBox(err, "Could not load the catalog"));
    }
  })();
}

function typeForm({ type, onSubmit, submitText, cancelHref }) {
  const name = type ? null : h("input", { id: "et-name", name: "name", type: "text", required: true, spellcheck: "false", autocomplete: "off", placeholder: "order.paid" });
  const description = h("input", { id: "et-description", name: "description", type: "text", maxlength: 1024, value: type ? type.description : "" });
  const schema = jsonArea("et-schema", "schema", type ? type.schema : null, 8);
  const example = jsonArea("et-example", "example", type ? type.example : null, 6);
  const errors = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "et-save" }, submitText);
  const form = h(
    "form",
    { class: "form card", novalidate: true, id: "event-type-form" },
    name ? formField("Name", name, "A dotted type such as order.paid; it cannot be changed later.") : null,
    formField("Description", description),
    formField("JSON Schema of data (optional)", schema, ["Checked at ", mono("POST /api/v1/events"), "; empty: not checked."]),
    formField("Example data (optional)", example, "Must satisfy the schema. Previews and test events use it."),
    errors,
    h("div", { class: "actions" }, submit, h("a", { class: "btn", href: cancelHref }, "Cancel")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(errors);
    clearFieldErrors(form);
    const s = readJson(schema);
    if (s.error) return localError(form, "schema", s.error);
    const x = readJson(example);
    if (x.error) return localError(form, "example", x.error);
    const body = { description: description.value.trim(), schema: s.value, example: x.value };
    if (name) body.name = name.value.trim();
    submit.disabled = true;
    try {
      await onSubmit(body);
    } catch (err) {
      reportError(form, errors, err, "Could not save the event type");
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => (name || description).focus() };
}

export function create(root, route, ctx) {
  ctx.title("New event type");
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/event-types" }, "Event types"), " › new"), h("h1", {}, "New event type"));
  if (!ctx.canWrite) {
    root.append(h("p", {}, `Your role (${ctx.me.role}) can read the catalog but not change it.`));
    return;
  }
  const { form, focus } = typeForm({
    submitText: "Create event type",
    cancelHref: "#/event-types",
    onSubmit: async (body) => {
      if (body.schema === null) delete body.schema;
      if (body.example === null) delete body.example;
      const t = await post("/api/v1/event-types", body);
      ctx.forgetEventTypes();
      ctx.notify(`Added ${t.name} to the catalog.`, "success");
      ctx.navigate(`event-types/${encodeURIComponent(t.name)}`);
    },
  });
  root.append(form);
  focus();
}

export function detail(root, route, ctx) {
  const name = route.params[0];
  ctx.title(name);
  const content = h("div", {}, loading("Loading the type…"));
  root.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/event-types" }, "Event types"), " › ", mono(name)), content);
  const emitted = h("div", { id: "emit-result", "aria-live": "polite" });
  const path = `/api/v1/event-types/${encodeURIComponent(name)}`;

  const render = (t) => {
    const actions = [];
    if (canEmit(ctx.me)) {
      const emit = h("button", { type: "button", class: "btn btn-primary", id: "emit-example" }, "Emit test event");
      emit.addEventListener("click", async () => {
        emit.disabled = true;
        fill(emitted, loading("Emitting…"));
        try {
          const r = await post("/api/v1/events", { type: t.name, data: t.example ?? {} });
          fill(emitted,
            h(
              "div",
              { class: "callout callout-ok" },
              h("p", { class: "callout-title" }, "Event accepted"),
              h("p", {}, link(["events", r.id], r.id, { class: "mono", id: "emitted-event" }), ` · ${r.deliveries} ${r.deliveries === 1 ? "delivery" : "deliveries"} created`, r.deliveries ? [" · ", h("a", { href: ctx.href("deliveries", { event_type: t.name }) }, "see them")] : " (no webhook subscribes to this type)"),
            ),
          );
        } catch (err) {
          fill(emitted, errorBox(err, "Could not emit the event"));
        } finally {
          emit.disabled = false;
        }
      });
      actions.push(emit);
    }
    if (ctx.canWrite) {
      const editBtn = h("button", { type: "button", class: "btn", id: "edit-event-type" }, "Edit");
      editBtn.addEventListener("click", () => {
        const { form, focus } = typeForm({
          type: t,
          submitText: "Save changes",
          cancelHref: `#/event-types/${encodeURIComponent(t.name)}`,
          onSubmit: async (body) => {
            const updated = await patch(path, body);
            ctx.notify(`Saved ${updated.name}.`, "success");
            render(updated);
          },
        });
        // Cancel is a link to this very page: a hash that does not change re-renders nothing.
        form.querySelector("a.btn").addEventListener("click", (e) => {
          e.preventDefault();
          render(t);
        });
        fill(content, h("h1", {}, "Edit ", mono(t.name)), form);
        focus();
      });
      actions.push(editBtn);
      if (!t.built_in || t.created_at) {
        const remove = h("button", { type: "button", class: "btn btn-danger", id: "delete-event-type" }, t.built_in ? "Restore built-in" : "Delete");
        remove.addEventListener("click", async () => {
          const ok = await confirmDialog({ title: t.built_in ? "Restore the built-in type?" : "Delete this type?", text: t.built_in ? "Your customisation is removed." : `${t.name} leaves the catalog; events of this type are still accepted and delivered.`, confirm: t.built_in ? "Restore" : "Delete type", danger: !t.built_in });
          if (!ok) return;
          try {
            await del(path);
            ctx.forgetEventTypes();
            ctx.navigate("event-types");
          } catch (err) {
            fill(emitted, errorBox(err, "Could not delete the type"));
          }
        });
        actions.push(remove);
      }
    }
    fill(content,
      h("div", { class: "page-head" }, h("div", {}, h("h1", {}, mono(t.name)), h("p", { class: "muted" }, t.description || "No description.")), h("div", { class: "page-actions" }, actions)),
      emitted,
      fields([
        ["Origin", t.built_in ? (t.created_at ? "built-in, customised by this tenant" : "built-in") : "this tenant's"],
        ["Events", h("a", { href: ctx.href("events", { type: t.name }) }, "Events of this type")],
        t.updated_at ? ["Updated", timeEl(t.updated_at, "both")] : null,
      ]),
      h("section", { class: "section", "aria-labelledby": "schema-title" }, h("h2", { id: "schema-title" }, "Schema"), t.schema ? jsonView(t.schema, "Schema") : h("p", { class: "muted" }, "No schema: data is not checked.")),
      h("section", { class: "section", "aria-labelledby": "example-title" }, h("h2", { id: "example-title" }, "Example"), t.example !== null && t.example !== undefined ? jsonView(t.example, "Example") : h("p", { class: "muted" }, "No example: a test event is sent with {} as its data.")),
    );
  };
  (async () => {
    try {
      render(await get(path));
    } catch (err) {
      fill(content, errorBox(err, err.status === 404 ? "No such event type" : "Could not load the event type"));
    }
  })();
}
