/**
 * The GitHub App manifest of a runner-fleet App, the permissions it asks for (with the reason for
 * each, shown on the setup page) and the URLs of the manifest flow: pure, so both are tested per scope.
 * https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
 */

export type Scope = "org" | "repo";

/** One permission the App asks for: the manifest key, and what the setup page tells the operator. */
export interface PermissionRequest {
  /** The manifest's `default_permissions` key. */
  key: string;
  access: "read" | "write";
  /** GitHub's name for it, as its "Create GitHub App" and install pages show it. */
  title: string;
  why: string;
}

const ACTIONS: PermissionRequest = {
  key: "actions",
  access: "write",
  title: "Repository permissions › Actions",
  why: "read a job's state, and re-run a job whose spot instance was reclaimed mid-run",
};

const METADATA: PermissionRequest = {
  key: "metadata",
  access: "read",
  title: "Repository permissions › Metadata",
  why: "GitHub requires it of every App (repository names and ids, read only)",
};

/**
 * Least privilege per scope. JIT registration (`generate-jitconfig`, and listing/removing the
 * fleet's runners) needs organization "Self-hosted runners: write" at org scope and repository
 * "Administration: write" at repo scope (GitHub files repository runners under Administration).
 */
const PERMISSIONS: Record<Scope, PermissionRequest[]> = {
  org: [
    {
      key: "organization_self_hosted_runners",
      access: "write",
      title: "Organization permissions › Self-hosted runners",
      why: "register one just-in-time runner per job, and remove the fleet's runners that are gone",
    },
    ACTIONS,
    METADATA,
  ],
  repo: [
    {
      key: "administration",
      access: "write",
      title: "Repository permissions › Administration",
      why: "register one just-in-time runner per job in its repository, and remove the fleet's runners that are gone (repository runners are under Administration)",
    },
    ACTIONS,
    METADATA,
  ],
};

export function permissionRequests(scope: Scope): readonly PermissionRequest[] {
  return PERMISSIONS[scope];
}

/** The manifest's `default_permissions`. */
export function appPermissions(scope: Scope): Record<string, "read" | "write"> {
  return Object.fromEntries(PERMISSIONS[scope].map((p) => [p.key, p.access]));
}

/** The one event the App subscribes to, and why (the setup page shows it). */
export const APP_EVENTS = [
  {
    name: "workflow_job",
    why: "a job was queued, started or finished: the fleet launches or cleans up a runner",
  },
] as const;

export interface ManifestOptions {
  owner: string;
  scope: Scope;
  /** GitHub web URL (`https://github.com` or the GHES host). */
  githubUrl: string;
  /** Where GitHub sends the browser back with the code (the local setup server). */
  redirectUrl: string;
  /** The deployed stack's webhook URL (`webhookUrl` output): the App's webhook starts active on it. */
  webhookUrl: string;
  name?: string;
}

/** GitHub's limit on an App's name. */
const MAX_APP_NAME = 34;

export function appManifest(options: ManifestOptions) {
  return {
    name: options.name ?? `runner-fleet-${options.owner}`.slice(0, MAX_APP_NAME),
    // The App's homepage (required): the owner's page on that GitHub.
    url: `${trimUrl(options.githubUrl)}/${options.owner}`,
    description: "Ephemeral self-hosted GitHub Actions runners on AWS (runner-fleet)",
    hook_attributes: { url: options.webhookUrl, active: true },
    redirect_url: options.redirectUrl,
    // Installable only on the account that created it: the fleet serves one owner.
    public: false,
    default_permissions: appPermissions(options.scope),
    default_events: APP_EVENTS.map((e) => e.name),
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
  return `${appsSettingsUrl(githubUrl, owner, accountType)}/new?state=${encodeURIComponent(state)}`;
}

/** The owner's list of GitHub Apps (where an App's keys are generated, or the App deleted). */
export function appsSettingsUrl(githubUrl: string, owner: string, accountType: "org" | "user") {
  const account = accountType === "org" ? `/organizations/${encodeURIComponent(owner)}` : "";
  return `${trimUrl(githubUrl)}${account}/settings/apps`;
}

/** Where the owner installs the App (its `html_url` is `…/apps/SLUG`, or `…/github-apps/SLUG` on GHES). */
export function installUrl(appHtmlUrl: string): string {
  return `${trimUrl(appHtmlUrl)}/installations/new`;
}
