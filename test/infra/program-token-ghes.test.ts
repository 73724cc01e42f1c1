// biome-ignore-all lint/suspicious/noExplicitAny: resource inputs under mocks are untyped JSON
/**
 * Token mode on GitHub Enterprise Server, repo scope: the program creates the repository webhooks
 * itself with the PAT, and the Lambdas talk to the GHES API. Runners sit in private subnets behind
 * one NAT gateway.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { isSecretValue, type ProgramRun, plain, runProgram } from "./mocks";
import { devStackValues, PROJECT, TOKEN_SECRETS, withSecrets } from "./stack-config";

let run: ProgramRun;
beforeAll(async () => {
  const values = devStackValues();
  values[`${PROJECT}:github`] = {
    url: "https://ghes.example.com",
    authMode: "token",
    scope: "repo",
    owner: "platform",
    repositories: ["api", "web"],
  };
  values[`${PROJECT}:network`] = { natGateway: true, availabilityZones: 2 };
  const { config, secretKeys } = withSecrets(values, TOKEN_SECRETS);
  run = await runProgram(config, secretKeys);
}, 600_000);

describe("token mode on GHES, repo scope", () => {
  it("creates a workflow_job webhook on each repository, signed with the stack's secret", () => {
    const hooks = run.ofType("github:index/repositoryWebhook:RepositoryWebhook");
    expect(hooks.map((h) => h.inputs.repository).sort()).toEqual(["api", "web"]);
    for (const hook of hooks) {
      expect(hook.inputs.events).toEqual(["workflow_job"]);
      expect(hook.inputs.active).toBe(true);
      const configuration = plain(hook.inputs.configuration);
      expect(plain(configuration.url)).toBe("https://abc123.execute-api.eu-west-1.amazonaws.com/webhook");
      expect(configuration.contentType).toBe("json");
      expect(plain(configuration.secret)).toBe(TOKEN_SECRETS.webhookSecret);
      expect(isSecretValue(hook.inputs.configuration) || isSecretValue(configuration.secret)).toBe(true);
    }
    expect(run.ofType("github:index/organizationWebhook:OrganizationWebhook")).toEqual([]);
  });

  it("tells the reconciler, and only it, which webhooks to redeliver failed deliveries of", () => {
    const hooks = run.ofType("github:index/repositoryWebhook:RepositoryWebhook");
    const expected = hooks
      .map((h) => ({ owner: "platform", repo: h.inputs.repository, hookId: Number(h.id) }))
      .sort((a, b) => a.repo.localeCompare(b.repo));
    for (const ref of expected) expect(ref.hookId).toBeGreaterThan(0);
    const setting = plain<string>(run.fnNamed("reconciler").inputs.environment.variables.GITHUB_WEBHOOKS);
    expect(
      JSON.parse(setting).sort((a: { repo: string }, b: { repo: string }) => a.repo.localeCompare(b.repo)),
    ).toEqual(expected);
    for (const name of ["webhook", "launcher", "ec2-events", "janitor"])
      expect(run.fnNamed(name).inputs.environment.variables).not.toHaveProperty("GITHUB_WEBHOOKS");
  });

  it("uses the PAT against the GHES API", () => {
    const [provider] = run.ofType("pulumi:providers:github");
    expect(provider!.inputs).toMatchObject({
      baseUrl: "https://ghes.example.com/api/v3/",
      owner: "platform",
    });
    expect(plain(provider!.inputs.token)).toBe(TOKEN_SECRETS.githubToken);
  });

  it("stores the PAT as a SecureString and gives the Lambdas its name, not its value", () => {
    const token = run
      .ofType("aws:ssm/parameter:Parameter")
      .find((p) => p.inputs.name === "/runner-fleet/dev/github/token")!;
    expect(token.inputs.type).toBe("SecureString");
    expect(plain(token.inputs.value)).toBe(TOKEN_SECRETS.githubToken);
    const env = run.fnNamed("launcher").inputs.environment.variables;
    expect(env).toMatchObject({
      GITHUB_API_URL: "https://ghes.example.com/api/v3",
      GITHUB_AUTH_MODE: "token",
      GITHUB_TOKEN_PARAM: "/runner-fleet/dev/github/token",
      RUNNER_SCOPE: "repo",
    });
    expect(env.GITHUB_APP_ID).toBeUndefined();
    expect(env.GITHUB_PRIVATE_KEY_PARAM).toBeUndefined();
    for (const f of run.ofType("aws:lambda/function:Function"))
      expect(JSON.stringify(f.inputs.environment)).not.toContain(TOKEN_SECRETS.githubToken);
  });

  it("puts runners in private subnets behind one NAT gateway, without public IPs", () => {
    const [vpc] = run.ofType("awsx:ec2:Vpc");
    expect(vpc!.inputs).toMatchObject({
      numberOfAvailabilityZones: 2,
      natGateways: { strategy: "Single" },
      subnetSpecs: [{ type: "Public" }, { type: "Private" }],
    });
    expect(run.fnNamed("launcher").inputs.environment.variables.SUBNET_IDS).toBe(
      "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
    );
    for (const t of run.ofType("aws:ec2/launchTemplate:LaunchTemplate"))
      expect(t.inputs.networkInterfaces[0].associatePublicIpAddress).toBe("false");
  });

  it("lets the janitor remove runners from each repository", () => {
    const [invocation] = run.ofType("aws:lambda/invocation:Invocation");
    expect(JSON.parse(invocation!.inputs.input)).toMatchObject({
      scope: "repo",
      owner: "platform",
      repositories: ["api", "web"],
    });
  });
});
