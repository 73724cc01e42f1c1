/**
 * The pages `setup:github-app create` serves on 127.0.0.1: the setup page (the steps, what will be
 * created, each permission and why, and the form that posts the manifest to GitHub), the result page
 * after GitHub's redirect, and a plain message page. Plain HTML and one inline stylesheet (allowed by
 * its hash in the Content-Security-Policy): no script, no external asset, usable by keyboard.
 */
import { createHash } from "node:crypto";
import { APP_EVENTS, type AppManifest, permissionRequests, type Scope } from "./manifest";
import type { StoreEntry } from "./setup-credentials-file";

const CSS = `
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --bg: #fff; --panel: #f6f8fa;
  --line: #d1d9e0; --accent: #0969da; --accent-fg: #fff; --ok: #1a7f37; --bad: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #f0f6fc; --muted: #9198a1; --bg: #0d1117;
  --panel: #151b23; --line: #3d444d; --accent: #4493f8; --accent-fg: #0d1117; --ok: #3fb950; --bad: #f85149; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 48rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.75rem; margin: .25rem 0 1.25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
.eyebrow { margin: 0; color: var(--muted); font-size: .9rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
code { background: var(--panel); padding: .1em .35em; border-radius: 4px; overflow-wrap: anywhere; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem;
  overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.steps { list-style: none; padding: 0; margin: 0 0 1.5rem; display: grid; gap: .5rem; }
.steps li { display: flex; gap: .75rem; align-items: baseline; padding: .6rem .8rem;
  border: 1px solid var(--line); border-radius: 6px; }
.steps li[aria-current="step"] { border-color: var(--accent); box-shadow: inset 4px 0 0 var(--accent); }
.steps .n { flex: none; width: 1.6rem; height: 1.6rem; border-radius: 50%; display: inline-grid;
  place-items: center; background: var(--panel); border: 1px solid var(--line); font-weight: 600; }
.steps .done .n { background: var(--ok); border-color: var(--ok); color: var(--bg); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid var(--line); }
th { font-weight: 600; }
.action { margin: 2rem 0; padding: 1.25rem; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; }
.action p { margin: .75rem 0 0; color: var(--muted); }
.button { display: inline-block; font: inherit; font-weight: 600; font-size: 1.05rem; cursor: pointer;
  padding: .65rem 1.25rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--accent-fg); text-decoration: none; }
.button:hover { filter: brightness(1.1); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 3px; }
.button:focus-visible { outline-color: var(--fg); }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
`;

const STYLE_HASH = `sha256-${createHash("sha256").update(CSS).digest("base64")}`;

/** Headers for every page: never cached, no script anywhere, not framed. */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": `default-src 'none'; style-src '${STYLE_HASH}'; img-src data:; base-uri 'none'; frame-ancestors 'none'`,
  "x-content-type-options": "nosniff",
};

export function html(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, eyebrow: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)} · runner-fleet</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
<main>
<p class="eyebrow">${html(eyebrow)}</p>
<h1>${html(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

type StepState = "done" | "current" | "todo";

function steps(states: [StepState, StepState, StepState], owner: string): string {
  const items = [
    `<strong>Create the App</strong>: GitHub asks you to confirm “Create GitHub App”.`,
    `<strong>Install it</strong> on ${html(owner)}: GitHub asks you to confirm “Install”.`,
    `<strong>Run <code>pulumi up</code></strong>: it takes seconds and rebuilds no image; it gives the running stack the App's credentials.`,
  ];
  const li = items.map((text, i) => {
    const state = states[i]!;
    const attrs = state === "current" ? ` aria-current="step"` : state === "done" ? ` class="done"` : "";
    const mark = state === "done" ? "✓" : String(i + 1);
    const status = state === "done" ? " (done)" : "";
    return `<li${attrs}><span class="n" aria-hidden="true">${mark}</span><span>${text}${status}</span></li>`;
  });
  return `<ol class="steps" aria-label="Setup steps">\n${li.join("\n")}\n</ol>`;
}

export interface SetupPageView {
  stack: string;
  /** GitHub's new-App URL the form posts to. */
  action: string;
  manifest: AppManifest;
  owner: string;
  scope: Scope;
  /** The owner is a user account. */
  user: boolean;
  githubUrl: string;
}

export function setupPage(view: SetupPageView): string {
  const { manifest } = view;
  const account = view.user ? `user account ${view.owner}` : `organization ${view.owner}`;
  const permissions = permissionRequests(view.scope)
    .map(
      (p) =>
        `<tr><td>${html(p.title)}<br><code>${html(p.key)}</code></td><td>${html(p.access === "write" ? "Read and write" : "Read-only")}</td><td>${html(p.why)}</td></tr>`,
    )
    .join("\n");
  const events = APP_EVENTS.map((e) => `<code>${html(e.name)}</code>: ${html(e.why)}`).join("<br>");
  return layout(
    "Create the GitHub App",
    `runner-fleet setup · stack ${view.stack}`,
    `${steps(["current", "todo", "todo"], view.owner)}
<section aria-labelledby="what">
<h2 id="what">What will be created</h2>
<dl>
<dt>Name</dt><dd>${html(manifest.name)} <span>(you can change it on GitHub's page)</span></dd>
<dt>Owner</dt><dd>${html(account)} on ${html(view.githubUrl)}</dd>
<dt>Webhook</dt><dd><code>${html(manifest.hook_attributes.url)}</code> (the deployed stack's), active from the start</dd>
<dt>Events</dt><dd>${events}</dd>
<dt>Visibility</dt><dd>Private: only ${html(view.owner)} can install it</dd>
</dl>
</section>
<section aria-labelledby="permissions">
<h2 id="permissions">Permissions it asks for, and why</h2>
<table>
<thead><tr><th scope="col">Permission</th><th scope="col">Access</th><th scope="col">Why</th></tr></thead>
<tbody>
${permissions}
</tbody>
</table>
<p>Nothing else: no access to code, issues, pull requests, secrets or members.</p>
</section>
<form class="action" method="post" action="${html(view.action)}">
<input type="hidden" name="manifest" value="${html(JSON.stringify(manifest))}">
<button class="button" type="submit" aria-describedby="create-help">Create the App on GitHub</button>
<p id="create-help">Opens GitHub, signed in as an owner of ${html(view.owner)}, with this App filled in. GitHub then sends you back here.</p>
</form>
<section aria-labelledby="after">
<h2 id="after">After you confirm on GitHub</h2>
<p>This tool receives the App's id, private key and webhook secret, keeps them in a file readable only by you until they are stored in stack <code>${html(view.stack)}</code>'s config (the key encrypted), and shows the install link here.</p>
</section>`,
  );
}

export interface ResultView {
  stack: string;
  owner: string;
  appName: string;
  appId: number;
  appUrl: string;
  installUrl: string;
  /** The config values stored (secrets are never shown). */
  stored: StoreEntry[];
  webhookUrl: string;
  /** Whose secret signs the deliveries: the stack's (set through GitHub's API) or GitHub's (stored). */
  webhookSecret: "stack" | "stored" | "not-set";
  /** Storing failed: the error, the saved file and the commands that finish the job. */
  failure?: { error: string; file?: string; commands: string[] };
}

function storedTable(view: ResultView): string {
  const rows = view.stored.map(
    (e) =>
      `<tr><td><code>${html(e.key)}</code></td><td>${e.secret ? "secret, encrypted" : `<code>${html(e.value)}</code>`}</td></tr>`,
  );
  return `<table>
<thead><tr><th scope="col">Stack config key (stack ${html(view.stack)})</th><th scope="col">Value</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>`;
}

function webhookLine(view: ResultView): string {
  const url = `<code>${html(view.webhookUrl)}</code>`;
  if (view.webhookSecret === "stack") {
    return `<p>The App's webhook is active on ${url} and signs deliveries with the secret the stack generated (set through GitHub's API).</p>`;
  }
  if (view.webhookSecret === "stored") {
    return `<p>The App's webhook is active on ${url}; its secret, generated by GitHub, is stored as the stack's <code>webhookSecret</code>.</p>`;
  }
  return `<p class="bad">The App's webhook is active on ${url}, but its secret is not the stack's yet: after <code>pulumi up</code>, run <code>npm run setup:github-app -- set-webhook</code>.</p>`;
}

export function resultPage(view: ResultView): string {
  const install = `<p><a class="button" href="${html(view.installUrl)}">Install ${html(view.appName)} on ${html(view.owner)}</a></p>`;
  const created = `<p><span class="ok">Created</span> ${html(view.appName)} (App id ${html(view.appId)}), its settings at <code>${html(view.appUrl)}</code>.</p>`;
  if (view.failure) {
    const where = view.failure.file
      ? `<p>Nothing is lost: the App's id, private key and webhook secret are in <code>${html(view.failure.file)}</code>, readable only by you. Finish with these commands (the terminal shows them too), which delete the file at the end:</p>
<pre>${html(view.failure.commands.join("\n"))}</pre>`
      : `<p>The terminal shows the App's credentials: store them as it says.</p>`;
    return layout(
      "The App is created; storing its credentials failed",
      `runner-fleet setup · stack ${view.stack}`,
      `${steps(["done", "current", "todo"], view.owner)}
${created}
<p class="bad">Storing in stack ${html(view.stack)} failed: ${html(view.failure.error)}</p>
${where}
<section aria-labelledby="install"><h2 id="install">Then install the App, and run <code>pulumi up</code></h2>${install}</section>`,
    );
  }
  return layout(
    "The App is created",
    `runner-fleet setup · stack ${view.stack}`,
    `${steps(["done", "current", "todo"], view.owner)}
${created}
<section aria-labelledby="install"><h2 id="install">Install it</h2>
${install}
<p>GitHub asks which repositories the App may see; pick those whose jobs should run on the fleet.</p>
</section>
<section aria-labelledby="next"><h2 id="next">Then run one command</h2>
<pre>pulumi up</pre>
<p>It takes seconds and rebuilds no image: the stack picks up the App's credentials; until then its webhook answers 503, and afterwards the fleet has GitHub redeliver what failed meanwhile.</p>
</section>
<section aria-labelledby="stored"><h2 id="stored">What was stored where</h2>
${storedTable(view)}
${webhookLine(view)}
<p>No copy is left on disk. You can close this page: the terminal says the same.</p>
</section>`,
  );
}

export function messagePage(title: string, text: string): string {
  return layout(title, "runner-fleet setup", `<p>${html(text)}</p>`);
}
