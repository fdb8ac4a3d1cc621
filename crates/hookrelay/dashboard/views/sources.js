// Inbound sources: the list with each ingest URL, and one source's setup steps and requests
// log — what arrived, whether it was accepted, and why not (forms: source-edit.js).

import { del, get } from "../api.js";
import { setupSteps } from "./source-edit.js";
import { badge, clear, confirmDialog, copyButton, emptyState, errorBox, fields, fill, h, jsonView, link, loading, mono, table, timeEl, morePager } from "../dom.js";
import { errorSnippet } from "./deliveries.js";

const REQUEST_STATUSES = ["accepted", "duplicate", "rejected", "rate_limited"];

function activeBadge(s) {
  return s.active ? badge("active", "active") : badge("paused", "paused");
}

export function list(root, route, ctx) {
  ctx.title("Sources");
  const body = h("div", {}, loading("Loading sources…"));
  const create = ctx.canWrite ? h("a", { class: "btn btn-primary", href: "#/sources/new", id: "new-source" }, "New source") : null;
  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Sources"), h("p", { class: "muted" }, "Inbound webhooks from GitHub, Stripe and others, verified and turned into events.")), h("div", { class: "page-actions" }, create)),
    body,
  );
  (async () => {
    try {
      const page = await get("/api/v1/sources", { limit: 1000 });
      if (!page.data.length) {
        fill(body, emptyState("No sources yet.", "A source gives GitHub, Stripe or any signed sender a URL to post to; each verified request becomes an event.", create ? h("a", { class: "btn btn-primary", href: "#/sources/new" }, "Create the first source") : null));
        return;
      }
      const rows = page.data.map((s) =>
        h(
          "tr",
          { "data-id": s.id },
          h("td", {}, link(["sources", s.id], s.name, { class: "strong" })),
          h("td", {}, s.provider),
          h("td", {}, activeBadge(s)),
          h("td", { class: "col-url" }, mono(s.ingest_url, { class: "mono url" })),
          h("td", { class: "num opt" }, `${s.rate_limit_per_min}/min`),
          h("td", { class: "nowrap opt" }, timeEl(s.created_at)),
        ),
      );
      fill(body, table("Sources", ["Name", "Provider", "Status", { text: "Ingest URL", class: "col-url" }, { text: "Rate limit", class: "num opt" }, { text: "Created", class: "opt" }], rows).el);
    } catch (err) {
      fill(body, errorBox(err, "Could not load sources"));
    }
  })();
}

function requestDetails(r) {
  const headers = r.headers;
  return h(
    "details",
    { class: "request-details" },
    h("summary", {}, "Headers and body"),
    h("p", { class: "label" }, "Headers"),
    jsonView(headers, "Request headers"),
    h("p", { class: "label" }, `Body (${r.body_size} bytes${r.body_truncated ? ", truncated" : ""})`),
    r.body === null || r.body === undefined
      ? h("p", { class: "muted" }, r.event_id ? ["The body is the event's data: ", link(["events", r.event_id], "open the event")] : "No body was kept.")
      : h("pre", { class: "body-text", tabindex: 0 }, r.body),
  );
}

export function detail(root, route, ctx) {
  const id = route.params[0];
  const status = route.query.status || "";
  ctx.title(`Source ${id}`);
  const head = h("div", {}, loading("Loading the source…"));
  const select = h(
    "select",
    { id: "req-status", name: "status" },
    h("option", { value: "" }, "Any outcome"),
    REQUEST_STATUSES.map((s) => h("option", { value: s, selected: s === status }, s.replace("_", " "))),
  );
  select.addEventListener("change", () => ctx.navigate(`sources/${encodeURIComponent(id)}`, { status: select.value }));
  const body = h("div", {}, loading("Loading the requests log…"));
  const more = h("div", { class: "more" });
  root.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/sources" }, "Sources"), " › ", mono(id)),
    head,
    h(
      "section",
      { class: "section", "aria-labelledby": "req-title" },
      h("div", { class: "section-head" }, h("h2", { id: "req-title" }, "Requests log"), h("label", { for: "req-status", class: "inline-label" }, "Outcome ", select)),
      body,
      more,
    ),
  );

  let tbody = null;
  const row = (r) =>
    h(
      "tr",
      { "data-id": r.id, class: `row-${r.status}` },
      h("td", { class: "nowrap" }, timeEl(r.received_at)),
      h("td", {}, badge(r.status)),
      h("td", {}, r.event_id ? link(["events", r.event_id], r.event_type || r.event_id) : r.event_type || h("span", { class: "muted" }, "—")),
      h("td", {}, r.reason ? errorSnippet(r.reason) : h("span", { class: "muted" }, "—")),
      h("td", { class: "opt" }, r.provider_id ? mono(r.provider_id) : h("span", { class: "muted" }, "—")),
      h("td", { class: "opt" }, r.request_id ? mono(r.request_id, { class: "mono selectable" }) : "—"),
      h("td", {}, requestDetails(r)),
    );
  const pager = morePager(more, (cursor) => get(`/api/v1/sources/${encodeURIComponent(id)}/requests`, { status, cursor, limit: 50 }), (r) => tbody.append(row(r)), "requests");

  (async () => {
    try {
      const s = await get(`/api/v1/sources/${encodeURIComponent(id)}`);
      ctx.title(`Source ${s.name}`);
      const actions = [];
      if (ctx.canWrite) {
        const remove = h("button", { type: "button", class: "btn btn-danger", id: "delete-source" }, "Delete");
        remove.addEventListener("click", async () => {
          const ok = await confirmDialog({ title: "Delete this source?", text: `${s.ingest_url} stops accepting requests (404) and its requests log is deleted; the events it made stay.`, confirm: "Delete source", danger: true });
          if (!ok) return;
          try {
            await del(`/api/v1/sources/${encodeURIComponent(id)}`);
            ctx.notify(`Deleted the source ${s.name}.`, "success");
            ctx.navigate("sources");
          } catch (err) {
            head.prepend(errorBox(err, "Could not delete the source"));
          }
        });
        actions.push(h("a", { class: "btn", id: "edit-source", href: `#/sources/${encodeURIComponent(id)}/edit` }, "Edit"), remove);
      }
      fill(head,
        h("div", { class: "page-head" }, h("div", {}, h("h1", {}, s.name, " ", activeBadge(s)), h("p", { class: "muted" }, mono(id))), h("div", { class: "page-actions" }, actions)),
        fields([
          ["Provider", s.provider],
          ["Ingest URL", [mono(s.ingest_url, { class: "mono url" }), " ", copyButton(s.ingest_url, "Copy URL")]],
          ["Rate limit", `${s.rate_limit_per_min} requests per minute`],
          ["Settings", jsonView(s.config, "Provider settings")],
          ["Created", timeEl(s.created_at, "both")],
        ]),
        h("details", { class: "setup-details", open: route.query.setup === "1" }, h("summary", {}, "Setup steps for ", s.provider), setupSteps(s, null)),
      );
    } catch (err) {
      fill(head, errorBox(err, err.status === 404 ? "No such source" : "Could not load the source"));
      clear(body);
      return;
    }
    try {
      const page = await get(`/api/v1/sources/${encodeURIComponent(id)}/requests`, { status, limit: 50 });
      pager.cursor = page.next_cursor;
      if (!page.data.length) {
        fill(body, emptyState(status ? `No ${status.replace("_", " ")} requests.` : "No requests yet.", "Every request to the ingest URL is logged here, accepted or not."));
      } else {
        const t = table("Requests", ["Received", "Outcome", "Event", "Reason", { text: "Provider id", class: "opt" }, { text: "Request id", class: "opt" }, "Details"], page.data.map(row));
        tbody = t.tbody;
        fill(body, t.el);
      }
      pager.render();
    } catch (err) {
      fill(body, errorBox(err, "Could not load the requests log"));
    }
  })();
}
