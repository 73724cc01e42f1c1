/**
 * The GitHub App manifest of a runner-fleet App, and the URLs of the manifest flow: pure, so the
 * permissions the App asks for are tested per scope.
 * https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
 */

export type Scope = "org" | "repo";

/**
 * Least privilege per scope. JIT registration (`generate-jitconfig`, and listing/removing the
 * fleet's runners) needs organization "Self-hosted runners: write" at org scope and repository
 * "Administration: write" at repo scope; "Actions: write" re-runs a job a spot interruption killed
 * (and reads jobs); "Metadata: read" is mandatory for every App.
 */
export function appPermissions(scope: Scope): Record<string, "read" | "write"> {
  return scope === "org"
    ? { organization_self_hosted_runners: "write", actions: "write", metadata: "read" }
    : { administration: "write", actions: "write", metadata: "read" };
}

/** Where an App's webhook points before the stack exists: a placeholder, and inactive. */
export const PLACEHOLDER_WEBHOOK_URL = "https://example.com/runner-fleet-not-deployed-yet";

export interface ManifestOptions {
  owner: string;
  scope: Scope;
  /** GitHub web URL (`https://github.com` or the GHES host). */
  githubUrl: string;
  /** Where GitHub sends the browser back with the code (the local setup server). */
  redirectUrl: string;
  /** The stack's webhook URL when it is deployed; otherwise the hook starts inactive. */
  webhookUrl?: string;
  name?: string;
}

export function appManifest(options: ManifestOptions) {
  return {
    name: options.name ?? `runner-fleet-${options.owner}`.slice(0, 34),
    // The App's homepage (required): the owner's page on that GitHub.
    url: `${trimUrl(options.githubUrl)}/${options.owner}`,
    description: "Ephemeral self-hosted GitHub Actions runners on AWS (runner-fleet)",
    hook_attributes: options.webhookUrl
      ? { url: options.webhookUrl, active: true }
      : { url: PLACEHOLDER_WEBHOOK_URL, active: false },
    redirect_url: options.redirectUrl,
    // Installable only on the account that created it: the fleet serves one owner.
    public: false,
    default_permissions: appPermissions(options.scope),
    default_events: ["workflow_job"],
  };
}

export type AppManifest = ReturnType<typeof appManifest>;

export function trimUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

/**
 * GitHub's "create an App from a manifest" page for the owner, with the state GitHub echoes back:
 * an organization's (`/organizations/ORG/settings/apps/new`) or the signed-in user's
 * (`/settings/apps/new`), on github.com or the GHES host alike.
 */
export function newAppUrl(githubUrl: string, owner: string, accountType: "org" | "user", state: string) {
  const path =
    accountType === "org"
      ? `/organizations/${encodeURIComponent(owner)}/settings/apps/new`
      : "/settings/apps/new";
  return `${trimUrl(githubUrl)}${path}?state=${encodeURIComponent(state)}`;
}

/** Where the owner installs the App (its `html_url` is `…/apps/SLUG`, or `…/github-apps/SLUG` on GHES). */
export function installUrl(appHtmlUrl: string): string {
  return `${trimUrl(appHtmlUrl)}/installations/new`;
}

/** The auto-submitting page the local server shows: posts the manifest to GitHub. */
export function manifestFormPage(action: string, manifest: AppManifest): string {
  const html = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>runner-fleet: create the GitHub App</title></head>
<body>
<p>Creating the runner-fleet GitHub App on GitHub…</p>
<form id="manifest" method="post" action="${html(action)}">
<input type="hidden" name="manifest" value="${html(JSON.stringify(manifest))}">
<button type="submit">Continue to GitHub</button>
</form>
<script>document.getElementById("manifest").submit();</script>
</body></html>
`;
}
