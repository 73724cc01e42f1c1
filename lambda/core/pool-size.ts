/**
 * How many stopped members a config's pool should hold right now: its `size`, or its schedule's size
 * while the schedule's weekly window is open in the schedule's time zone (e.g. 5 on working days
 * 08:00–19:00 Europe/Berlin, 0 otherwise). Pure: the reconciler's refill and the status tools ask it.
 */
import type { LabelConfig, PoolSchedule, Weekday } from "../shared/label-config";

const WEEKDAYS: Record<string, Weekday> = {
  Mon: "mon",
  Tue: "tue",
  Wed: "wed",
  Thu: "thu",
  Fri: "fri",
  Sat: "sat",
  Sun: "sun",
};

/** The weekday and minutes since midnight at `now` in `timeZone` (daylight saving included). */
export function localTime(now: Date, timeZone: string): { day: Weekday; minutes: number } {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(now);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return { day: WEEKDAYS[part("weekday")]!, minutes: Number(part("hour")) * 60 + Number(part("minute")) };
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Whether the schedule's window [from, to) is open at `now`. */
export function scheduleOpen(schedule: PoolSchedule, now: Date): boolean {
  const { day, minutes } = localTime(now, schedule.timeZone);
  return (
    schedule.days.includes(day) && minutes >= minutesOf(schedule.from) && minutes < minutesOf(schedule.to)
  );
}

/** The pool size a config asks for at `now`: 0 without a pool. */
export function poolSizeAt(config: Pick<LabelConfig, "pool">, now: Date): number {
  const pool = config.pool;
  if (!pool) return 0;
  if (pool.schedule && scheduleOpen(pool.schedule, now)) return pool.schedule.size;
  return pool.size;
}
