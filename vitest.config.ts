import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Only a hung test should hit these: nothing here depends on the machine's speed, and a busy
    // 2-core machine (the bench beside the suite) can take several times an idle one's time.
    testTimeout: 180_000,
    hookTimeout: 600_000,
    // 2 cores: keep workers few; each sandbox test file starts its own servers on random ports.
    pool: "forks",
    maxWorkers: 2,
  },
});
