/**
 * GitHub's web side of the App manifest flow, as the GitHub fake serves it on its own origin (the
 * GHES host; on github.com, github.com itself). A manifest form posts to `/settings/apps/new` (user)
 * or `/organizations/ORG/settings/apps/new` with `?state=`; GitHub shows "Create GitHub App for
 * ORG" with the name editable; its button creates the App and redirects the browser to the
 * manifest's `redirect_url` with a one-time `code` and the `state`, which the API
 * (`apps/create-from-manifest`) exchanges for the credentials. The manifest is checked against the
 * parameters GitHub documents; a bad one is a 422 page and a violation, like a bad API request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { html as htmlText } from "../../scripts/lib/setup-pages";
import type { Faults } from "./faults";
import type { GitHubState } from "./github-state";

/** https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest#github-app-manifest-parameters */
const MANIFEST_PARAMETERS = new Set([
  "name",
  "url",
  "hook_attributes",
  "redirect_url",
  "callback_urls",
  "setup_url",
  "description",
  "public",
  "default_events",
  "default_permissions",
  "request_oauth_on_install",
  "setup_on_update",
]);

const NEW_APP = /^(?:\/organizations\/([^/]+))?\/settings\/apps\/new$/;
const CREATE_APP = /^(?:\/organizations\/([^/]+))?\/settings\/apps$/;

function isUrl(value: unknown, schemes = ["https:", "http:"]): boolean {
  try {
    return typeof value === "string" && schemes.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

export function manifestProblems(manifest: unknown): string[] {
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) {
    return ["the manifest is not a JSON object"];
  }
  const m = manifest as Record<string, unknown>;
  const hook = m.hook_attributes as Record<string, unknown> | undefined;
  const permissions = (m.default_permissions ?? {}) as Record<string, unknown>;
  return [
    ...Object.keys(m)
      .filter((k) => !MANIFEST_PARAMETERS.has(k))
      .map((k) => `unknown manifest parameter ${k}`),
    !isUrl(m.url) && "url (the App's homepage) must be a URL",
    m.name !== undefined && !(typeof m.name === "string" && m.name.length >= 1 && m.name.length <= 34)
      ? "name must be 1 to 34 characters"
      : false,
    hook !== undefined && !isUrl(hook.url) && "hook_attributes.url must be a URL",
    hook?.active !== undefined &&
      typeof hook.active !== "boolean" &&
      "hook_attributes.active must be a boolean",
    m.redirect_url !== undefined && !isUrl(m.redirect_url) && "redirect_url must be a URL",
    m.public !== undefined && typeof m.public !== "boolean" && "public must be a boolean",
    m.default_events !== undefined &&
      !(Array.isArray(m.default_events) && m.default_events.every((e) => typeof e === "string")) &&
      "default_events must be a list of event names",
    ...Object.entries(permissions)
      .filter(([, level]) => level !== "read" && level !== "write" && level !== "admin")
      .map(([name, level]) => `default_permissions.${name} is ${String(level)}, not read or write`),
  ].filter((p): p is string => typeof p === "string");
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  const text = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${htmlText(title)} · GitHub (fake)</title></head><body><main><h1>${htmlText(title)}</h1>${body}</main></body></html>\n`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
  });
  res.end(text);
}

/** Serves the manifest flow's web pages; `false` when the request is not one of them (an API call). */
export function serveGitHubWeb(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  raw: Buffer,
  ctx: { state: GitHubState; faults: Faults },
): boolean {
  const review = NEW_APP.exec(url.pathname);
  const create = review ? null : CREATE_APP.exec(url.pathname);
  if (req.method !== "POST" || (!review && !create)) return false;
  const org = (review ?? create)![1];
  const form = new URLSearchParams(raw.toString("utf8"));
  const operation = review ? "web/new-app-from-manifest" : "web/create-app-from-manifest";
  const record = (status: number) =>
    ctx.faults.record({ service: "github", operation, params: { org, state: form.get("state") }, status });
  if (org && !ctx.state.runnerGroups.has(decodeURIComponent(org).toLowerCase())) {
    record(404);
    page(res, 404, "Page not found", "<p>No such organization.</p>");
    return true;
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(form.get("manifest") ?? "");
  } catch {
    manifest = undefined;
  }
  const problems = manifestProblems(manifest);
  if (problems.length) {
    ctx.state.violations.push({
      operation,
      method: "POST",
      path: url.pathname,
      where: "body",
      errors: problems,
    });
    record(422);
    page(
      res,
      422,
      "Invalid GitHub App manifest",
      `<ul>${problems.map((p) => `<li>${htmlText(p)}</li>`).join("")}</ul>`,
    );
    return true;
  }
  const m = manifest as Record<string, unknown>;
  if (review) {
    record(200);
    const owner = org ? decodeURIComponent(org) : "your personal account";
    const action = org ? `/organizations/${org}/settings/apps` : "/settings/apps";
    page(
      res,
      200,
      `Create GitHub App for ${owner}`,
      `<form method="post" action="${htmlText(action)}">
<input type="hidden" name="manifest" value="${htmlText(JSON.stringify(m))}">
<input type="hidden" name="state" value="${htmlText(url.searchParams.get("state") ?? "")}">
<label for="name">GitHub App name</label> <input id="name" name="name" value="${htmlText(String(m.name ?? ""))}">
<button type="submit">Create GitHub App for ${htmlText(owner)}</button>
</form>`,
    );
    return true;
  }
  if (!m.redirect_url) {
    record(200);
    page(res, 200, "GitHub App created", "<p>The manifest has no redirect_url: nothing to send back.</p>");
    return true;
  }
  const name = form.get("name");
  const code = ctx.state.createAppFromManifest({ ...m, ...(name ? { name } : {}) });
  const back = new URL(String(m.redirect_url));
  back.searchParams.set("code", code);
  const state = form.get("state");
  if (state) back.searchParams.set("state", state);
  record(302);
  res.writeHead(302, { location: back.href, "content-length": "0" });
  res.end();
  return true;
}
