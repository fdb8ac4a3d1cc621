// Portal mode: the dashboard opened from a portal link (`/portal#token=hrp_…`) shows only its
// tenant's webhooks, deliveries and dead letters, with the link's role, and offers no sign-in.

import { session } from "./api.js";

/** Whether this page is the portal (`GET /portal`) rather than the operators' dashboard. */
export const inPortal = location.pathname === "/portal";

/** Sections the portal offers in its navigation. */
const NAV = new Set(["deliveries", "dlq", "webhooks"]);
/** Routes it opens: those, and an event's page (linked from its deliveries). */
const ROUTES = new Set([...NAV, "events"]);

/** Whether `section` belongs in the navigation here. */
export function inNav(section) {
  return !inPortal || NAV.has(section);
}

/** Whether a route under `section` may open here. */
export function routeAllowed(section) {
  return !inPortal || ROUTES.has(section);
}

/**
 * Moves the link's token from the address into the tab's session (once), then takes it out of
 * the address, so it is in no bookmark, history entry or screenshot of the URL bar.
 */
export function takePortalToken() {
  if (!inPortal) {
    // A portal link's token is never the operators' dashboard's session.
    if (session.kind === "portal") session.clear();
    return;
  }
  const m = location.hash.match(/^#token=(hrp_[0-9A-Za-z]+)/);
  if (m) {
    session.set(m[1], "portal");
    history.replaceState(null, "", "/portal#/deliveries");
  } else if (session.token && session.kind !== "portal") {
    // Someone signed in to the dashboard in this tab: the portal shows only a link's view.
    session.clear();
  }
}
