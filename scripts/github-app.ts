/**
 * `npm run setup:github-app -- create [--owner ORG] [--scope org|repo] [--github-url URL] [--user]`
 *   after the first `pulumi up`: checks the CLI, the stack, its secrets and GitHub, then creates the
 *   runner-fleet GitHub App from a manifest (a page on 127.0.0.1), its webhook active on the stack's
 *   URL, and stores its id and key in the stack config. Owner, scope and URL default to the stack's
 *   `runner-fleet:github.*` config.
 * `npm run setup:github-app -- set-webhook`
 *   points an existing App's webhook at the stack's webhookUrl with the stack's secret.
 * Both take `--stack NAME` (default: the selected stack) and `--api-url URL` (default: derived).
 */
import { parseArgs } from "node:util";
import { createApp } from "./lib/github-app";
import { pulumiCli } from "./lib/pulumi";
import { setWebhook } from "./lib/setup-webhook";

const USAGE = `usage:
  npm run setup:github-app -- create [--owner ORG] [--scope org|repo] [--github-url URL] [--user] [--name NAME] [--replace]
  npm run setup:github-app -- set-webhook
options: --stack NAME, --api-url URL (default: derived from the GitHub URL)
create runs after the first \`pulumi up\`; owner, scope and GitHub URL default to the stack's config.`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      owner: { type: "string" },
      scope: { type: "string" },
      "github-url": { type: "string" },
      "api-url": { type: "string" },
      user: { type: "boolean", default: false },
      name: { type: "string" },
      replace: { type: "boolean", default: false },
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
    await createApp(
      {
        owner: values.owner,
        scope: values.scope,
        githubUrl: values["github-url"],
        apiUrl: values["api-url"],
        user: values.user,
        name: values.name,
        replace: values.replace,
      },
      {
        pulumi,
        log,
        onReady: (url) => log(`\nOpen ${url} in a browser signed in to GitHub (Ctrl+C cancels).`),
      },
    );
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
