/**
 * The App's credentials on disk between GitHub's code exchange and the stack config: GitHub shows the
 * private key once, so it is written to a 0600 file before anything else can fail, and the file is
 * deleted only when every value is stored. Should storing fail, the file stays and the operator gets
 * the exact commands that finish the job from it.
 *
 * Where: ~/.runner-fleet/ (0700), not the working directory: the working directory is the project's
 * git checkout, where a key file is one `git add -A` away from a commit, and `git clean` deletes it.
 * The working directory is only the fallback when the home directory is not writable (and
 * .gitignore ignores github-app-*.json there).
 */
import { constants } from "node:fs";
import { chmod, mkdir, open, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { configSetCommand, shellQuote } from "./pulumi";

export interface SavedApp {
  about: string;
  stack: string;
  savedAt: string;
  appId: number;
  slug: string;
  htmlUrl: string;
  installUrl: string;
  /** The App's private key (PEM), as GitHub handed it out once. */
  privateKey: string;
  /** The webhook secret GitHub generated for the App (null if none). */
  webhookSecret: string | null;
}

/** One stack config value to store; a secret names the file's field it is read from. */
export interface StoreEntry {
  key: string;
  value: string;
  path?: boolean;
  secret?: boolean;
  field?: "privateKey" | "webhookSecret";
}

export function credentialsDirs(cwd = process.cwd()): string[] {
  return [join(homedir(), ".runner-fleet"), cwd];
}

async function writePrivateFile(path: string, text: string): Promise<void> {
  // O_EXCL: never overwrite (or follow a planted symlink to) an existing file.
  const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await file.writeFile(text, "utf8");
    await file.sync();
  } finally {
    await file.close();
  }
  // The mode passed to open is masked by the umask, which can only remove bits; set it exactly anyway.
  await chmod(path, 0o600);
}

/** Writes the credentials to the first directory that takes them; `undefined` if none did. */
export async function saveCredentials(
  saved: SavedApp,
  dirs: string[],
  log: (line: string) => void,
): Promise<string | undefined> {
  const name = `github-app-${saved.appId}-${saved.savedAt.replace(/[:.]/g, "")}.json`;
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writePrivateFile(path, `${JSON.stringify(saved, null, 2)}\n`);
      return path;
    } catch (error) {
      log(`could not write ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return undefined;
}

export async function deleteCredentials(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** The shell commands that store `entries` from the saved file (secrets piped, never in argv), then delete it. */
export function finishCommands(file: string, stack: string, entries: StoreEntry[]): string[] {
  const readField = (field: string) =>
    `node -e 'process.stdout.write(require(process.argv[1])[process.argv[2]])' ${shellQuote(file)} ${field}`;
  return [
    ...entries.map((entry) =>
      configSetCommand(
        stack,
        entry.key,
        entry.field ? { from: readField(entry.field) } : { literal: entry.value },
        {
          path: entry.path,
          secret: entry.secret,
        },
      ),
    ),
    `rm ${shellQuote(file)}`,
  ];
}
