/**
 * The runner image's Image Builder components: every document checked against the AWSTOE document
 * schema, its bash syntax-checked (and shellchecked when shellcheck is installed), and the runner
 * install step run for real against a fake GitHub release (file:// URLs), so a checksum mismatch,
 * a pin that disagrees and a too-old version each fail the build.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  type ImageComponent,
  imageComponents,
  inlineIncludes,
  parentImageArn,
  recipeParameters,
} from "../src/components/runner-bootstrap";
import { MINIMUM_RUNNER_VERSION } from "../src/components/runner-minimum-version";

// CI installs shellcheck (.ci/run): there a missing shellcheck is a failure, not a skipped check.
const HAS_SHELLCHECK = spawnSync("shellcheck", ["--version"]).status === 0 || process.env.CI === "true";
const PHASES = ["build", "validate", "test"];
/** AWSTOE's action modules (Linux-relevant ones). */
const ACTIONS = new Set([
  "ExecuteBash",
  "ExecuteBinary",
  "ExecuteDocument",
  "CreateFile",
  "CreateFolder",
  "CreateSymlink",
  "DeleteFile",
  "DeleteFolder",
  "MoveFile",
  "MoveFolder",
  "CopyFile",
  "CopyFolder",
  "ReadFile",
  "ListFiles",
  "SetFileOwner",
  "SetFolderOwner",
  "SetFileEncoding",
  "SetFilePermissions",
  "SetFolderPermissions",
  "S3Download",
  "S3Upload",
  "WebDownload",
  "Reboot",
  "UpdateOS",
  "InstallMSI",
  "UninstallMSI",
  "ExecutePowerShell",
  "AssertText",
]);
const DOC_KEYS = new Set(["name", "description", "schemaVersion", "parameters", "constants", "phases"]);
const STEP_KEYS = new Set([
  "name",
  "action",
  "inputs",
  "timeoutSeconds",
  "onFailure",
  "maxAttempts",
  "if",
  "loop",
]);

interface Step {
  name: string;
  action: string;
  inputs: { commands?: string[] } & Record<string, unknown>;
  timeoutSeconds?: number;
  onFailure?: string;
}
interface Doc {
  name: string;
  description: string;
  schemaVersion: unknown;
  parameters?: Record<string, { type: string; default?: unknown; description: string }>[];
  constants?: Record<string, { type: string; value: string }>[];
  phases: { name: string; steps: Step[] }[];
}

const components = imageComponents();
const parsed = (component: ImageComponent) => parse(component.data) as Doc;

/** What `{{ name }}` stands for when nothing is passed: parameter defaults and constants. */
function documentValues(doc: Doc): Record<string, string> {
  const constants = (doc.constants ?? []).map((c) => Object.entries(c)[0]!);
  return Object.fromEntries([
    ...(doc.parameters ?? []).map((p) => Object.entries(p)[0]!).map(([n, d]) => [n, String(d.default)]),
    ...constants.map(([n, c]) => [n, c.value]),
  ]);
}

/** A step's commands as the build instance runs them, with parameter values substituted. */
function stepScript(step: Step, values: Record<string, string>): string {
  return (step.inputs.commands ?? []).join("\n").replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`no value for ${name}`);
    return values[name]!;
  });
}

function findStep(key: string, stepName: string): { doc: Doc; step: Step } {
  const doc = parsed(components.find((c) => c.key === key)!);
  const step = doc.phases.flatMap((p) => p.steps).find((s) => s.name === stepName);
  if (!step) throw new Error(`no step ${stepName} in ${key}`);
  return { doc, step };
}

describe("component documents", () => {
  it("lists the host, the runner and the pre-pulled images, for Linux on both architectures", () => {
    expect(components.map((c) => c.key)).toEqual(["host", "actions-runner", "prepull-images"]);
    for (const c of components) {
      expect(c.platform).toBe("Linux");
      expect(c.supportedOsVersions).toEqual(["Ubuntu 24"]);
      expect(c.architectures).toEqual(["x86_64", "arm64"]);
      expect(c.version).toMatch(/^1\.0\.\d+$/);
    }
  });

  it.each(components.map((c) => [c.file, c] as const))(
    "%s follows the AWSTOE document schema",
    (_, component) => {
      const doc = parsed(component);
      for (const key of Object.keys(doc)) expect(DOC_KEYS.has(key), `document key ${key}`).toBe(true);
      expect(component.data).toMatch(/^schemaVersion: 1\.0$/m);
      expect(doc.schemaVersion).toBe(1);
      expect(doc.name).toMatch(/^runner-fleet-[a-z-]+$/);
      expect(component.name).toBe(doc.name);
      expect(component.description).toBe(doc.description.trim());
      expect(doc.description.length).toBeGreaterThan(20);
      // Image Builder takes at most 16,000 characters of inline component data.
      expect(component.data.length).toBeLessThanOrEqual(16_000);
      expect(component.data).not.toContain("# @include");

      const phaseNames = doc.phases.map((p) => p.name);
      expect(new Set(phaseNames).size).toBe(phaseNames.length);
      expect(phaseNames).toContain("build");
      expect(phaseNames).toContain("test");
      for (const phase of doc.phases) {
        expect(PHASES).toContain(phase.name);
        expect(phase.steps.length).toBeGreaterThan(0);
        const stepNames = phase.steps.map((s) => s.name);
        expect(new Set(stepNames).size, `unique step names in ${phase.name}`).toBe(stepNames.length);
        for (const step of phase.steps) {
          for (const key of Object.keys(step)) expect(STEP_KEYS.has(key), `step key ${key}`).toBe(true);
          expect(step.name).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
          expect(ACTIONS.has(step.action), `action ${step.action}`).toBe(true);
          expect(typeof step.inputs).toBe("object");
          if (step.timeoutSeconds !== undefined) expect(Number.isInteger(step.timeoutSeconds)).toBe(true);
          if (step.onFailure !== undefined) expect(["Abort", "Continue", "Ignore"]).toContain(step.onFailure);
          if (step.action === "ExecuteBash") {
            expect(step.inputs.commands?.length).toBeGreaterThan(0);
            for (const command of step.inputs.commands ?? []) expect(typeof command).toBe("string");
            expect(step.inputs.commands?.[0]).toMatch(/^set -euo pipefail\n/);
          }
        }
      }
    },
  );

  it.each(components.map((c) => [c.file, c] as const))(
    "%s declares every parameter and constant it uses and uses every one",
    (_, c) => {
      const doc = parsed(c);
      const declared = (doc.parameters ?? []).map((p) => {
        const entries = Object.entries(p);
        expect(entries).toHaveLength(1);
        const [name, definition] = entries[0]!;
        expect(name).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
        expect(definition.type).toBe("string");
        expect(typeof definition.default).toBe("string");
        expect(definition.description.length).toBeGreaterThan(10);
        return name;
      });
      const constants = (doc.constants ?? []).map((entry) => {
        const [name, definition] = Object.entries(entry)[0]!;
        expect(definition.type).toBe("string");
        expect(definition.value.length).toBeGreaterThan(0);
        return name;
      });
      const used = new Set([...c.data.matchAll(/\{\{\s*([^}\s]+)\s*\}\}/g)].map((m) => m[1]!));
      expect([...used].sort()).toEqual([...declared, ...constants].sort());
    },
  );

  it.each(components.map((c) => [c.file, c] as const))("%s has valid bash in every step", async (_, c) => {
    const doc = parsed(c);
    const dir = await mkdtemp(path.join(tmpdir(), "rf-component-"));
    const files: string[] = [];
    for (const phase of doc.phases) {
      for (const step of phase.steps.filter((s) => s.action === "ExecuteBash")) {
        const file = path.join(dir, `${phase.name}-${step.name}.sh`);
        await writeFile(file, `#!/bin/bash\n${stepScript(step, documentValues(doc))}\n`);
        const syntax = spawnSync("bash", ["-n", file], { encoding: "utf8" });
        expect(syntax.stderr, `${phase.name}/${step.name}`).toBe("");
        files.push(file);
      }
    }
    if (HAS_SHELLCHECK) {
      // SC1091: /etc/os-release is not on this machine.
      const result = spawnSync("shellcheck", ["-e", "SC1091", ...files], { encoding: "utf8" });
      expect(result.stdout).toBe("");
    }
    await rm(dir, { recursive: true });
  });

  it("inlines a script at the indentation of its include line", () => {
    const out = inlineIncludes(
      "a:\n  - |\n    echo one\n    # @include image/scripts/runner-release.sh\n    echo two\n",
    );
    expect(out).toContain("\n    runner_platform() {\n");
    expect(out).toContain("\n    echo two\n");
    expect(out).not.toContain("@include");
    expect(() => parse(out)).not.toThrow();
  });
});

describe("recipe inputs", () => {
  it("passes the runner version, minimum and per-architecture pin to the runner component", () => {
    expect(recipeParameters("actions-runner", "x86_64")).toEqual([
      { name: "RunnerVersion", value: "latest" },
      { name: "MinimumRunnerVersion", value: MINIMUM_RUNNER_VERSION },
    ]);
    const sha = "A".repeat(64);
    expect(
      recipeParameters("actions-runner", "arm64", { runnerVersion: "2.330.0", runnerSha256: { arm64: sha } }),
    ).toContainEqual({ name: "RunnerSha256", value: sha.toLowerCase() });
    expect(
      recipeParameters("actions-runner", "x86_64", {
        runnerVersion: "2.330.0",
        runnerSha256: { arm64: sha },
      }),
    ).not.toContainEqual(expect.objectContaining({ name: "RunnerSha256" }));
    expect(() => recipeParameters("actions-runner", "x86_64", { runnerSha256: { x86_64: sha } })).toThrow(
      /pinned/,
    );
    expect(() => recipeParameters("actions-runner", "x86_64", { runnerVersion: "v2" })).toThrow(/x\.y\.z/);
  });

  it("passes pre-pulled images as one space-separated parameter, refusing anything that is not a reference", () => {
    expect(
      recipeParameters("prepull-images", "x86_64", { prePullImages: ["node:22", "ghcr.io/o/i@sha256:ab"] }),
    ).toEqual([{ name: "Images", value: "node:22 ghcr.io/o/i@sha256:ab" }]);
    expect(recipeParameters("prepull-images", "x86_64", {})).toBeUndefined();
    expect(() =>
      recipeParameters("prepull-images", "x86_64", { prePullImages: ["node'; reboot"] }),
    ).toThrow();
    expect(recipeParameters("host", "x86_64", { grantSudo: false })).toEqual([
      { name: "GrantSudo", value: "false" },
    ]);
    expect(recipeParameters("host", "x86_64")).toBeUndefined();
  });

  it("names the AWS-managed Ubuntu 24.04 parent image per architecture and partition", () => {
    // The names of AWS CDK's AmazonManagedImage.ubuntuServer2404; always the latest version.
    expect(parentImageArn("eu-west-1", "x86_64")).toBe(
      "arn:aws:imagebuilder:eu-west-1:aws:image/ubuntu-server-24-lts-x86/x.x.x",
    );
    expect(parentImageArn("eu-west-1", "arm64")).toBe(
      "arn:aws:imagebuilder:eu-west-1:aws:image/ubuntu-server-24-lts-arm64/x.x.x",
    );
    expect(parentImageArn("cn-north-1", "arm64")).toBe(
      "arn:aws-cn:imagebuilder:cn-north-1:aws:image/ubuntu-server-24-lts-arm64/x.x.x",
    );
    expect(parentImageArn("us-gov-west-1", "x86_64")).toBe(
      "arn:aws-us-gov:imagebuilder:us-gov-west-1:aws:image/ubuntu-server-24-lts-x86/x.x.x",
    );
  });
});

describe("runner install (the component's InstallRunner step, run for real)", () => {
  let root: string;
  const user = userInfo().username;
  const shaOf = (data: Buffer) => createHash("sha256").update(data).digest("hex");
  const packages: Record<string, Buffer> = {};

  /** A fake GitHub: releases API and downloads as files, each release's notes carrying its hashes. */
  async function publish(version: string, notesSha: Partial<Record<string, string>> = {}, latest = false) {
    const lines: string[] = [];
    for (const platform of ["linux-x64", "linux-arm64", "linux-arm"]) {
      const dir = path.join(root, "pkg", platform, version);
      await mkdir(path.join(dir, "bin"), { recursive: true });
      await writeFile(path.join(dir, "run.sh"), `#!/bin/bash\necho ${platform} ${version}\n`);
      const file = `actions-runner-${platform}-${version}.tar.gz`;
      await mkdir(path.join(root, "download", `v${version}`), { recursive: true });
      const tarball = path.join(root, "download", `v${version}`, file);
      expect(spawnSync("tar", ["-czf", tarball, "-C", dir, "."]).status).toBe(0);
      packages[`${platform}-${version}`] = await readFile(tarball);
      const sha = notesSha[platform] ?? shaOf(packages[`${platform}-${version}`]!);
      lines.push(`- ${file} <!-- BEGIN SHA ${platform} -->${sha}<!-- END SHA ${platform} -->`);
    }
    const release = JSON.stringify({
      tag_name: `v${version}`,
      body: `## What's Changed\n* things\n\n## SHA-256 Checksums\n\n${lines.join("\n")}\n`,
    });
    await mkdir(path.join(root, "api", "tags"), { recursive: true });
    await writeFile(path.join(root, "api", "tags", `v${version}`), release);
    if (latest) await writeFile(path.join(root, "api", "latest"), release);
  }

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "rf-runner-release-"));
    await publish("2.331.0", {}, true);
    await publish("2.320.0");
    await publish("2.330.0", { "linux-x64": "0".repeat(64) });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function install(parameters: Record<string, string>, machine = "x86_64") {
    const { doc, step } = findStep("actions-runner", "InstallRunner");
    const dir = await mkdtemp(path.join(root, "install-"));
    const target = path.join(dir, "actions-runner");
    const values = { ...documentValues(doc), RunnerUser: user, RunnerDir: target, ...parameters };
    const result = spawnSync("bash", ["-c", stepScript(step, values)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH,
        RUNNER_RELEASES_API: `file://${root}/api`,
        RUNNER_DOWNLOAD_BASE: `file://${root}/download`,
        RUNNER_MACHINE: machine,
      },
    });
    const version = await readFile(path.join(target, ".runner-fleet-version"), "utf8").catch(() => undefined);
    const runSh = await readFile(path.join(target, "run.sh"), "utf8").catch(() => undefined);
    return { status: result.status, stderr: result.stderr, stdout: result.stdout, version, runSh };
  }

  it("installs the latest release after checking GitHub's published SHA-256", async () => {
    const result = await install({});
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.version).toBe("2.331.0\n");
    expect(result.runSh).toContain("linux-x64 2.331.0");
    expect(result.stdout).toContain(shaOf(packages["linux-x64-2.331.0"]!));
  });

  it("takes the arm64 package and hash on arm64", async () => {
    const result = await install({ RunnerVersion: "2.331.0" }, "aarch64");
    expect(result.status).toBe(0);
    expect(result.runSh).toContain("linux-arm64 2.331.0");
    expect(result.stdout).toContain(shaOf(packages["linux-arm64-2.331.0"]!));
  });

  it("fails the build on a checksum mismatch and installs nothing", async () => {
    const result = await install({ RunnerVersion: "2.330.0", MinimumRunnerVersion: "2.300.0" });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/checksum mismatch for actions-runner-linux-x64-2\.330\.0\.tar\.gz/);
    expect(result.version).toBeUndefined();
    expect(result.runSh).toBeUndefined();
  });

  it("refuses a runner older than the minimum version", async () => {
    const result = await install({ RunnerVersion: "2.320.0" });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("runner 2.320.0 is older than the minimum version 2.329.0");
    expect(result.runSh).toBeUndefined();
    // The same release passes with a lower minimum: the refusal is the version check, nothing else.
    expect((await install({ RunnerVersion: "2.320.0", MinimumRunnerVersion: "2.320.0" })).status).toBe(0);
  });

  it("requires a pinned SHA-256 to equal the published one", async () => {
    const published = shaOf(packages["linux-x64-2.331.0"]!);
    const ok = await install({ RunnerVersion: "2.331.0", RunnerSha256: published.toUpperCase() });
    expect(ok.status).toBe(0);
    const pinnedWrong = await install({ RunnerVersion: "2.331.0", RunnerSha256: "f".repeat(64) });
    expect(pinnedWrong.status).not.toBe(0);
    expect(pinnedWrong.stderr).toContain("differs from the one published");
    expect(pinnedWrong.runSh).toBeUndefined();
  });

  it("fails when the release asked for does not exist", async () => {
    const result = await install({ RunnerVersion: "2.399.0" });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("cannot read the release");
  });
});

describe("runner-release.sh helpers", () => {
  const helpers = path.join(__dirname, "..", "image", "scripts", "runner-release.sh");
  const call = (snippet: string) =>
    spawnSync("bash", ["-c", `source "$0"; ${snippet}`, helpers], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });

  it("compares versions numerically", () => {
    expect(call("version_at_least 2.330.0 2.329.0").status).toBe(0);
    expect(call("version_at_least 2.329.0 2.329.0").status).toBe(0);
    expect(call("version_at_least 2.1000.0 2.329.0").status).toBe(0);
    expect(call("version_at_least 2.99.9 2.329.0").status).not.toBe(0);
    expect(call("version_at_least 3.0.0 2.329.0").status).toBe(0);
    expect(call("version_at_least 2.330 2.329.0").status).not.toBe(0);
  });

  it("reads one platform's hash from the release notes, and refuses none or two", () => {
    const x64 = "a".repeat(64);
    const arm64 = "B".repeat(64);
    const notes = [
      `- x <!-- BEGIN SHA linux-arm -->${"c".repeat(64)}<!-- END SHA linux-arm -->`,
      `- y <!-- BEGIN SHA linux-arm64 -->${arm64}<!-- END SHA linux-arm64 -->`,
      `- z <!-- BEGIN SHA linux-x64 -->${x64}<!-- END SHA linux-x64 -->`,
    ].join("\n");
    expect(call(`published_sha256 '${notes}' linux-x64`).stdout).toBe(`${x64}\n`);
    expect(call(`published_sha256 '${notes}' linux-arm64`).stdout).toBe(`${arm64.toLowerCase()}\n`);
    expect(call(`published_sha256 'no hashes here' linux-x64`).status).not.toBe(0);
    const twice = `${notes}\n<!-- BEGIN SHA linux-x64 -->${"d".repeat(64)}<!-- END SHA linux-x64 -->`;
    expect(call(`published_sha256 '${twice}' linux-x64`).status).not.toBe(0);
  });

  it("maps machines to runner platforms", () => {
    expect(call("runner_platform x86_64").stdout).toBe("linux-x64\n");
    expect(call("runner_platform aarch64").stdout).toBe("linux-arm64\n");
    expect(call("runner_platform riscv64").status).not.toBe(0);
  });
});

describe("boot trimming (runner-host's TrimBoot and BootIsTrimmed steps, run against a fake systemctl)", () => {
  /** Units a runner cannot do without: the trimming must never mask, disable or stop them. */
  const NEEDED = [
    "containerd.service",
    "docker.service",
    "docker.socket",
    "snapd.socket",
    "snapd.apparmor.service",
    "snap.amazon-ssm-agent.amazon-ssm-agent.service",
    "cloud-init-local.service",
    "cloud-init.service",
    "cloud-config.service",
    "cloud-final.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "chrony.service",
    "hibinit-agent.service",
  ];
  /**
   * systemctl as far as the steps use it: mask and disable record a unit's state in a directory,
   * is-enabled reads it back (nothing for a unit that is not installed), every call is logged.
   */
  const FAKE_SYSTEMCTL = `#!/bin/bash
echo "systemctl $*" >>"$FAKE_LOG"
command=$1
shift
case $command in
  mask) for unit; do echo masked >"$FAKE_UNITS/$unit"; done ;;
  disable) for unit; do echo disabled >"$FAKE_UNITS/$unit"; done ;;
  is-enabled)
    [[ -f $FAKE_UNITS/$1 ]] || exit 1
    state=$(<"$FAKE_UNITS/$1")
    echo "$state"
    [[ $state == enabled ]]
    ;;
esac
`;
  let root: string;
  let units: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "rf-boot-trim-"));
    await mkdir(path.join(root, "bin"));
    await writeFile(path.join(root, "bin", "systemctl"), FAKE_SYSTEMCTL, { mode: 0o755 });
    await writeFile(path.join(root, "bin", "snap"), '#!/bin/bash\necho "snap $*" >>"$FAKE_LOG"\n', {
      mode: 0o755,
    });
    // A parent image without snapd: systemctl only.
    await mkdir(path.join(root, "bin-no-snap"));
    await writeFile(path.join(root, "bin-no-snap", "systemctl"), FAKE_SYSTEMCTL, { mode: 0o755 });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Runs one runner-host step as the image build would, with /etc and the units faked under root. */
  async function runStep(stepName: string, bin = "bin") {
    const { doc, step } = findStep("host", stepName);
    const values = { ...documentValues(doc), BootTrimScript: path.join(root, "lib", "boot-trim.sh") };
    const result = spawnSync("bash", ["-c", stepScript(step, values)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: `${root}/${bin}:${process.env.PATH}`,
        BOOT_TRIM_ETC: path.join(root, "etc"),
        FAKE_LOG: path.join(root, "calls.log"),
        FAKE_UNITS: units,
      },
    });
    const calls = (await readFile(path.join(root, "calls.log"), "utf8").catch(() => "")).trim().split("\n");
    return { ...result, calls };
  }

  /** A fresh image: the units a runner needs, and some of those to trim, enabled. */
  async function freshImage(enabled = [...NEEDED, "snapd.service", "apt-daily.timer", "ssh.socket"]) {
    units = await mkdtemp(path.join(root, "units-"));
    await rm(path.join(root, "calls.log"), { force: true });
    for (const unit of enabled) await writeFile(path.join(units, unit), "enabled\n");
  }

  const unitsOf = (calls: string[], verb: string) =>
    calls.filter((c) => c.startsWith(`systemctl ${verb} `)).flatMap((c) => c.split(" ").slice(2));

  it("is the host's last build step, and its test stage checks the booted image", () => {
    const doc = parsed(components.find((c) => c.key === "host")!);
    const build = doc.phases.find((p) => p.name === "build")!.steps;
    expect(build.at(-1)!.name).toBe("TrimBoot");
    const test = doc.phases.find((p) => p.name === "test")!.steps.map((s) => s.name);
    expect(test).toContain("BootIsTrimmed");
  });

  it("masks the apt timers, snapd's boot waits and the chores a one-job runner never needs", async () => {
    await freshImage();
    const { status, stderr, calls } = await runStep("TrimBoot");
    expect(stderr).toBe("");
    expect(status).toBe(0);
    const masked = unitsOf(calls, "mask");
    for (const unit of [
      "apt-daily.timer",
      "apt-daily-upgrade.timer",
      "unattended-upgrades.service",
      "snapd.seeded.service",
      "man-db.timer",
      "motd-news.timer",
      "ModemManager.service",
      "ssh.socket",
    ]) {
      expect(masked).toContain(unit);
    }
    // snapd stays startable (snapd.socket): only taken off the boot, after refreshes were held.
    expect(unitsOf(calls, "disable")).toEqual(["snapd.service"]);
    expect(masked).not.toContain("snapd.service");
    const hold = calls.indexOf("snap set system refresh.hold=forever");
    expect(hold).toBeGreaterThan(-1);
    expect(hold).toBeLessThan(calls.indexOf("systemctl disable snapd.service"));
  });

  it("never masks, disables or stops what the runner, Docker, cloud-init or the SSM agent need", async () => {
    await freshImage();
    const { calls } = await runStep("TrimBoot");
    const touched = ["mask", "disable", "stop"].flatMap((verb) => unitsOf(calls, verb));
    expect(touched.filter((unit) => NEEDED.includes(unit))).toEqual([]);
  });

  it("has cloud-init probe only EC2 and generate no SSH host keys, in a file read after Ubuntu's", async () => {
    await freshImage();
    await runStep("TrimBoot");
    const dir = path.join(root, "etc", "cloud", "cloud.cfg.d");
    const [file] = await readdir(dir);
    expect([file!, "90_dpkg.cfg"].sort()).toEqual(["90_dpkg.cfg", file!]);
    expect(parse(await readFile(path.join(dir, file!), "utf8"))).toEqual({
      datasource_list: ["Ec2", "None"],
      ssh_genkeytypes: [],
    });
  });

  it("passes on the booted image, and names each unit whose state is wrong", async () => {
    await freshImage();
    await runStep("TrimBoot");
    const trimmed = await runStep("BootIsTrimmed");
    expect(trimmed.stderr).toBe("");
    expect(trimmed.status).toBe(0);
    expect(trimmed.stdout).toMatch(/units masked, snapd\.service disabled/);

    await writeFile(path.join(units, "docker.service"), "masked\n");
    await writeFile(path.join(units, "apt-daily.timer"), "enabled\n");
    await writeFile(path.join(units, "snapd.service"), "enabled\n");
    const wrong = await runStep("BootIsTrimmed");
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain("docker.service is masked: the runner needs it");
    expect(wrong.stderr).toContain("apt-daily.timer is enabled, not masked");
    expect(wrong.stderr).toContain("snapd.service is enabled, not disabled");
  });

  it("leaves snap alone on a parent image without snapd, and still passes its check", async () => {
    await freshImage(["docker.service", "containerd.service", "apt-daily.timer"]);
    const trim = await runStep("TrimBoot", "bin-no-snap");
    expect(trim.status).toBe(0);
    expect(
      trim.calls.filter((c) => !c.startsWith("systemctl mask ") && !c.startsWith("systemctl stop ")),
    ).toEqual([]);
    const check = await runStep("BootIsTrimmed", "bin-no-snap");
    expect(check.stderr).toBe("");
    expect(check.status).toBe(0);
  });

  it.runIf(HAS_SHELLCHECK)("boot-trim.sh passes shellcheck (the step holds it as a heredoc)", () => {
    const script = path.join(__dirname, "..", "image", "scripts", "boot-trim.sh");
    const result = spawnSync("shellcheck", ["-s", "bash", script], { encoding: "utf8" });
    expect(result.stdout).toBe("");
  });
});
