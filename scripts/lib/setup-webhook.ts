/**
 * The App's webhook config (`/app/hook/config`, with the App's JWT): the create flow sets the
 * stack's secret on a new App with it, and `set-webhook` points an existing App at the deployed
 * stack (an App created before the stack, or a stack that was re-created).
 */
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { githubApiUrlOf } from "../../src/config/load";
import { projectKey as key, type Pulumi } from "./pulumi";

export function appOctokit(apiUrl: string, appId: string | number, privateKey: string): Octokit {
  return new Octokit({ baseUrl: apiUrl, authStrategy: createAppAuth, auth: { appId, privateKey } });
}

export interface WebhookConfig {
  url?: string;
  content_type?: string;
  insecure_ssl?: string | number;
  secret?: string;
}

/**
 * Sets the App's webhook to `url` with `secret`, content type json and TLS verification, then reads
 * the config back to check GitHub kept it.
 */
export async function applyWebhookConfig(
  octokit: Octokit,
  url: string,
  secret: string,
): Promise<WebhookConfig> {
  const wanted = { url, content_type: "json", secret, insecure_ssl: "0" };
  // `url` is also Octokit's own option (the request URL), so the body goes as `data`.
  await octokit.request("PATCH /app/hook/config", { data: wanted } as never);
  const { data } = await octokit.request("GET /app/hook/config");
  const got = data as WebhookConfig;
  const problems = [
    got.url !== url && `url is ${got.url}`,
    got.content_type !== "json" && `content_type is ${got.content_type}`,
    String(got.insecure_ssl) !== "0" && "TLS verification is off",
    !got.secret && "no secret is set",
  ].filter(Boolean);
  if (problems.length) throw new Error(`GitHub did not keep the webhook config: ${problems.join(", ")}`);
  return got;
}

export interface SetWebhookOptions {
  /** Override the API base (default: derived from runner-fleet:github.url). */
  apiUrl?: string;
}

/**
 * Points the App's webhook at the stack (`webhookUrl` output) with the secret the stack verifies
 * (its `webhookSecret` output, else the `webhookSecret` config), for an App created before the stack
 * or a stack that was re-created.
 */
export async function setWebhook(
  options: SetWebhookOptions,
  deps: { pulumi: Pulumi; log: (line: string) => void },
): Promise<WebhookConfig> {
  const { pulumi, log } = deps;
  const outputs = await pulumi.stackOutputs().catch((error: Error) => {
    throw new Error(`cannot read the stack outputs (${error.message}): run \`pulumi up\` first`);
  });
  const url = outputs.webhookUrl;
  if (typeof url !== "string" || !url) {
    throw new Error("the stack has no webhookUrl output: run `pulumi up` first");
  }
  const authMode = (await pulumi.configGet(key("github.authMode"), { path: true })) ?? "app";
  if (authMode !== "app") {
    throw new Error(`github.authMode is ${authMode}: the program itself manages the webhook in token mode`);
  }
  const required = async (name: string, value: Promise<string | undefined>) => {
    const found = await value;
    if (!found) throw new Error(`${key(name)} is not set (run \`npm run setup:github-app -- create\`)`);
    return found;
  };
  const appId = await required("github.appId", pulumi.configGet(key("github.appId"), { path: true }));
  const privateKey = await required("githubAppPrivateKey", pulumi.configGet(key("githubAppPrivateKey")));
  const secret = await required(
    "webhookSecret",
    pulumi
      .stackOutput("webhookSecret", { showSecrets: true })
      .then((value) => value ?? pulumi.configGet(key("webhookSecret"))),
  );
  const githubUrl = (await pulumi.configGet(key("github.url"), { path: true })) ?? "https://github.com";
  const octokit = appOctokit(options.apiUrl ?? githubApiUrlOf(githubUrl), appId, privateKey);
  const got = await applyWebhookConfig(octokit, url, secret);
  log(`The App's webhook now points at ${url} (json, TLS verified, the stack's secret).`);
  log(
    "An App created by an older setup may have its webhook inactive (GitHub's API cannot " +
      "activate it): then tick Active under Webhook in the App's settings once.",
  );
  return got;
}
