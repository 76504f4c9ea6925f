/**
 * @module
 * The dashboard's request guards: the Host check (against DNS rebinding, which would
 * let a web page on another name read and post to a loopback dashboard), the
 * same-origin check and the CSRF token for the status write-back, and the security
 * headers of every response.
 */
import type { MiddlewareHandler } from "hono";

/** Which Host names the app answers: loopback names only, or any (`--allow-remote`). */
export type HostPolicy = "loopback" | "any";

/** Says whether `host` (a hostname or an address, brackets allowed) is loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Refuses requests whose Host is not loopback under the `loopback` policy (421). */
export function hostGuard(policy: HostPolicy): MiddlewareHandler {
  return async (c, next) => {
    if (policy === "loopback" && !isLoopbackHost(new URL(c.req.url).hostname)) {
      return c.text("Misdirected request: this dashboard answers loopback names only", 421);
    }
    await next();
  };
}

/**
 * Says why a state-changing request is cross-site, or `null` if it is same-origin.
 * A browser sends `Origin` on every POST and `Sec-Fetch-Site` on every request; a
 * request with neither is refused, because it cannot be shown to come from our page.
 */
export function crossSiteReason(request: Request): string | null {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  if (site !== null && site !== "same-origin") return `Sec-Fetch-Site is ${site}`;
  if (origin !== null && origin !== new URL(request.url).origin) {
    return `Origin ${origin} is foreign`;
  }
  if (site === null && origin === null) return "neither Origin nor Sec-Fetch-Site is present";
  return null;
}

/** A fresh random token (32 bytes, hex) for one server process. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Compares a submitted token with the expected one in time independent of content. */
export function tokenMatches(submitted: unknown, expected: string): boolean {
  if (typeof submitted !== "string" || submitted.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) {
    diff |= submitted.charCodeAt(i) ^ expected.charCodeAt(i);
  }
  return diff === 0;
}

/**
 * The headers every response carries: a CSP that allows our own style sheet and
 * script only (no inline script or style, no framing, forms post to us only),
 * no MIME sniffing, no referrer leaking finding ids off-site, no caching of triage state.
 */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.res.headers.set(
      "Content-Security-Policy",
      "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    c.res.headers.set("X-Content-Type-Options", "nosniff");
    // Not no-referrer: under it Chromium sends `Origin: null` on our own form posts,
    // which the same-origin check must refuse. same-origin still leaks nothing away.
    c.res.headers.set("Referrer-Policy", "same-origin");
    c.res.headers.set("X-Frame-Options", "DENY");
    if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
  };
}
