/**
 * The janitor's removal of the stack's runners from GitHub, scope by scope (an organization, or each
 * repository): only runners named as the stack's (core/stack-identity.ts isStackRunner).
 */
import { githubApp, githubForInstallation } from "../adapters/github-client";
import { deleteRunner, listRunners } from "../adapters/github-runners";
import { isStackRunner, type RunnerScope } from "../core/stack-identity";
import { settings } from "../shared/settings";

/** Removes the stack's runners of `scope`; returns their names. */
export async function removeStackRunners(scope: RunnerScope, stackName: string): Promise<string[]> {
  const gh = await clientFor(scope);
  const removed: string[] = [];
  for (const runner of await listRunners(gh, scope)) {
    if (!isStackRunner(runner.name, stackName)) continue;
    await deleteRunner(gh, scope, runner.id);
    removed.push(runner.name);
  }
  return removed;
}

/** Token mode: the PAT. App mode: the App's installation on the organization or repository. */
async function clientFor(scope: RunnerScope) {
  if (settings().githubAuthMode === "token") return githubForInstallation();
  const app = await githubApp();
  const { data } =
    scope.kind === "org"
      ? await app.request("GET /orgs/{org}/installation", { org: scope.org })
      : await app.request("GET /repos/{owner}/{repo}/installation", { owner: scope.owner, repo: scope.repo });
  return githubForInstallation(data.id);
}
