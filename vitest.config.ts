import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2 cores: keep workers few; each sandbox test file starts its own servers on random ports.
    pool: "forks",
    maxWorkers: 2,
  },
});
