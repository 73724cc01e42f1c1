import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { localTime, poolSizeAt, scheduleOpen } from "../lambda/core/pool-size";
import type { PoolSchedule } from "../lambda/shared/label-config";

const workingHours: PoolSchedule = {
  timeZone: "Europe/Berlin",
  days: ["mon", "tue", "wed", "thu", "fri"],
  from: "08:00",
  to: "19:00",
  size: 5,
};

describe("a pool's size now", () => {
  it("is 0 without a pool and the fixed size without a schedule", () => {
    expect(poolSizeAt({}, new Date())).toBe(0);
    expect(poolSizeAt({ pool: { size: 3 } }, new Date())).toBe(3);
  });

  it("follows the window in its own time zone, daylight saving included", () => {
    const pool = { size: 0, schedule: workingHours };
    // Monday 6 July 2026, 06:30 UTC = 08:30 in Berlin (CEST, UTC+2): open.
    expect(poolSizeAt({ pool }, new Date("2026-07-06T06:30:00Z"))).toBe(5);
    // Monday 5 January 2026, 06:30 UTC = 07:30 in Berlin (CET, UTC+1): not yet.
    expect(poolSizeAt({ pool }, new Date("2026-01-05T06:30:00Z"))).toBe(0);
    // 19:00 local is the end (exclusive); 18:59 is still open.
    expect(poolSizeAt({ pool }, new Date("2026-01-05T17:59:00Z"))).toBe(5);
    expect(poolSizeAt({ pool }, new Date("2026-01-05T18:00:00Z"))).toBe(0);
    // Saturday: closed all day.
    expect(poolSizeAt({ pool }, new Date("2026-07-11T10:00:00Z"))).toBe(0);
  });

  it("takes the local weekday, not UTC's, near midnight", () => {
    // Sunday 23:30 UTC is Monday 08:30 in Tokyo.
    const tokyo = { ...workingHours, timeZone: "Asia/Tokyo" };
    expect(localTime(new Date("2026-07-05T23:30:00Z"), "Asia/Tokyo")).toEqual({ day: "mon", minutes: 510 });
    expect(scheduleOpen(tokyo, new Date("2026-07-05T23:30:00Z"))).toBe(true);
  });

  it("a window to 24:00 stays open through the last minute of the day", () => {
    const late = { ...workingHours, from: "20:00", to: "24:00", timeZone: "UTC" };
    expect(scheduleOpen(late, new Date("2026-07-06T23:59:00Z"))).toBe(true);
    expect(scheduleOpen(late, new Date("2026-07-07T00:00:00Z"))).toBe(false);
  });

  it("is always one of the two configured sizes", () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date("2020-01-01"), max: new Date("2035-01-01"), noInvalidDate: true }),
        fc.nat(50),
        fc.nat(50),
        (now, size, windowSize) => {
          const got = poolSizeAt({ pool: { size, schedule: { ...workingHours, size: windowSize } } }, now);
          expect([size, windowSize]).toContain(got);
        },
      ),
    );
  });
});
