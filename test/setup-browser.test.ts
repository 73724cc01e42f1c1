/**
 * The App setup in a real browser: Debian's chromium, headless, driven by playwright-core. Page →
 * Tab, Enter posts the manifest to the GitHub fake's "Create GitHub App" page → its button → GitHub's
 * redirect back → code exchange → credentials stored through the stand-in CLI → the result page
 * with the install link. Screenshots of a failing test are kept under test-results/setup-browser/;
 * SETUP_SCREENSHOTS=DIR keeps one of every page.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CreatedApp, createApp } from "../scripts/lib/github-app";
import { permissionRequests } from "../scripts/lib/manifest";
import { pulumiCli } from "../scripts/lib/pulumi";
import { type GitHubFake, startGitHubFake } from "./sandbox/github";
import { deployedStack, setupStandIn } from "./setup-pulumi-stand-in";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
// A real browser on a busy 2-core machine: generous limits, correctness never depends on them.
const SLOW = 120_000;
const FAILURE_SHOTS = join(import.meta.dirname, "..", "test-results", "setup-browser");

/** Runs `steps`; on failure keeps a screenshot of the page under test-results/ before rethrowing. */
async function withScreenshotOnFailure(page: Page, name: string, steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (error) {
    await mkdir(FAILURE_SHOTS, { recursive: true });
    const file = join(FAILURE_SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n(screenshot: ${file})`, {
      cause: error,
    });
  }
}

async function keepScreenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.SETUP_SCREENSHOTS;
  if (dir) await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/** The focused element: its tag, text, and whether its focus is visible (an outline is drawn). */
async function focused(page: Page) {
  const element = page.locator(":focus");
  const [tag, outline] = await element.evaluate((el) => {
    const style = el.ownerDocument.defaultView!.getComputedStyle(el);
    return [el.tagName.toLowerCase(), `${style.outlineStyle} ${style.outlineWidth}`];
  });
  return { tag, text: (await element.innerText()).trim(), outline };
}

describe("the setup page in chromium", () => {
  let fake: GitHubFake;
  let context: BrowserContext;
  let profile: string;
  let credentialsDir: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    fake = await startGitHubFake({ flavour: "ghes" });
    profile = await mkdtemp(join(tmpdir(), "setup-chromium-"));
    credentialsDir = await mkdtemp(join(tmpdir(), "setup-credentials-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      timeout: SLOW,
    });
    context.setDefaultTimeout(SLOW);
    context.setDefaultNavigationTimeout(SLOW);
  }, SLOW * 2);

  afterAll(async () => {
    await context?.close();
    await fake?.close();
    for (const dir of [profile, credentialsDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    "creates the App by keyboard: setup page → GitHub's create page → result page with the install link",
    async () => {
      const page = context.pages()[0] ?? (await context.newPage());
      const githubOrigin = new URL(fake.url).origin;
      const requests: string[] = [];
      const problems: string[] = [];
      page.on("request", (request) => requests.push(new URL(request.url()).origin));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`${message.location().url}: ${message.text()}`);
      });
      page.on("pageerror", (error) => problems.push(error.message));

      const cli = deployedStack(fake.org);
      let pageUrl: ((url: string) => void) | undefined;
      const served = new Promise<string>((resolve) => {
        pageUrl = resolve;
      });
      const creating = createApp(
        { githubUrl: githubOrigin, apiUrl: fake.url, credentialsDirs: [credentialsDir], timeoutMs: SLOW * 2 },
        {
          pulumi: pulumiCli({ run: setupStandIn(cli), stack: "dev" }),
          log: () => {},
          onReady: (url) => pageUrl!(url),
        },
      );
      // Should the flow fail first, the test ends with that error rather than waiting for a page.
      const setupUrl = await Promise.race([served, creating.then(() => "")]);
      const setupOrigin = new URL(setupUrl).origin;
      let created: CreatedApp | undefined;

      await withScreenshotOnFailure(page, "setup-page", async () => {
        await page.goto(setupUrl);
        expect(await page.title()).toBe("Create the GitHub App · runner-fleet");
        await keepScreenshot(page, "1-setup-page");
        const text = await page.locator("main").innerText();
        expect(text).toContain(`runner-fleet-${fake.org}`);
        expect(text).toContain("https://abc123.execute-api.eu-west-1.amazonaws.com/webhook");
        for (const p of permissionRequests("org")) {
          const row = page.getByRole("row", {
            name: new RegExp(p.title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")),
          });
          expect(await row.innerText()).toContain(p.why);
        }
        // The form's button is the first stop, its focus drawn; Enter submits the form to GitHub.
        await page.keyboard.press("Tab");
        expect(await focused(page)).toEqual({
          tag: "button",
          text: "Create the App on GitHub",
          outline: "solid 3px",
        });
        await Promise.all([
          page.waitForURL(`${githubOrigin}/organizations/${fake.org}/settings/apps/new?**`),
          page.keyboard.press("Enter"),
        ]);
      });

      await withScreenshotOnFailure(page, "github-create-page", async () => {
        expect(await page.locator("h1").innerText()).toBe(`Create GitHub App for ${fake.org}`);
        await keepScreenshot(page, "2-github-create-page");
        // GitHub's page: the name field, then "Create GitHub App"; GitHub redirects back to the setup.
        await page.keyboard.press("Tab");
        await page.keyboard.press("Tab");
        expect((await focused(page)).text).toBe(`Create GitHub App for ${fake.org}`);
        await Promise.all([page.waitForURL(`${setupOrigin}/callback?**`), page.keyboard.press("Enter")]);
        created = await creating;
      });

      await withScreenshotOnFailure(page, "result-page", async () => {
        expect(await page.locator("h1").innerText()).toBe("The App is created");
        await keepScreenshot(page, "3-result-page");
        const install = page.getByRole("link", { name: `Install runner-fleet-${fake.org} on ${fake.org}` });
        expect(await install.getAttribute("href")).toBe(created!.installUrl);
        await page.keyboard.press("Tab");
        expect((await focused(page)).text).toBe(`Install runner-fleet-${fake.org} on ${fake.org}`);
        const text = await page.locator("main").innerText();
        expect(text).toContain("pulumi up");
        expect(text).toContain("runner-fleet:githubAppPrivateKey");
        expect(text).toContain("secret, encrypted");
        expect(text).not.toContain(fake.privateKey.split("\n")[1]!);
      });

      expect(cli.config.get("runner-fleet:github.appId")?.value).toBe(String(fake.appId));
      expect(cli.config.get("runner-fleet:githubAppPrivateKey")).toEqual({
        value: fake.privateKey.trim(),
        secret: true,
      });
      expect(fake.state.hookActive).toBe(true);
      expect(await readdir(credentialsDir)).toEqual([]);
      // Nothing but the setup and GitHub was asked for (no external asset), and the CSP blocked nothing.
      expect(new Set(requests)).toEqual(new Set([setupOrigin, githubOrigin]));
      expect(problems).toEqual([]);
      expect(fake.violations()).toEqual([]);
    },
    SLOW * 3,
  );
});
