/**
 * `npm run setup:github-app -- create --owner ORG [--github-url https://ghes.example.com] [--scope org|repo] [--user]`
 *   creates the runner-fleet GitHub App from a manifest and stores its id, key and webhook secret in
 *   the stack config (README "Operator tools").
 * `npm run setup:github-app -- set-webhook`
 *   after `pulumi up`: points the App's webhook at the stack's webhookUrl with the stack's secret.
 * Both take `--stack NAME` (default: the selected stack) and `--api-url URL` (default: derived).
 */
import { parseArgs } from "node:util";
import { createApp, setWebhook } from "./lib/github-app";
import { PROJECT, pulumiCli } from "./lib/pulumi";

const USAGE = `usage:
  npm run setup:github-app -- create --owner ORG [--scope org|repo] [--github-url URL] [--user] [--name NAME]
  npm run setup:github-app -- set-webhook
options: --stack NAME, --api-url URL (default: derived from the GitHub URL)`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      owner: { type: "string" },
      scope: { type: "string", default: "org" },
      "github-url": { type: "string" },
      "api-url": { type: "string" },
      "webhook-url": { type: "string" },
      user: { type: "boolean", default: false },
      name: { type: "string" },
      stack: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  const pulumi = pulumiCli({ stack: values.stack });
  const log = (line: string) => console.log(line);
  if (command === "create") {
    if (!values.owner) throw new Error(`--owner is required\n${USAGE}`);
    if (values.scope !== "org" && values.scope !== "repo") throw new Error("--scope is org or repo");
    const githubUrl =
      values["github-url"] ??
      (await pulumi.configGet(`${PROJECT}:github.url`, { path: true }).catch(() => undefined)) ??
      "https://github.com";
    await createApp(
      {
        owner: values.owner,
        scope: values.scope,
        githubUrl,
        user: values.user,
        apiUrl: values["api-url"],
        webhookUrl: values["webhook-url"],
        name: values.name,
      },
      {
        pulumi,
        log,
        onReady: (url) => log(`Open ${url} in a browser signed in to GitHub as an owner of ${values.owner}.`),
      },
    );
    log("Next: install the App, then `pulumi up`, then `npm run setup:github-app -- set-webhook`.");
    return;
  }
  if (command === "set-webhook") {
    await setWebhook({ apiUrl: values["api-url"] }, { pulumi, log });
    return;
  }
  throw new Error(`unknown command ${command}\n${USAGE}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`setup:github-app: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
